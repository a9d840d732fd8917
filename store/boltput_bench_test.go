package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkBoltPut is one write's latency, alone and among concurrent
// ones (a warm, a cold page): the batch delay plus a commit and its sync.
func BenchmarkBoltPut(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("concurrent=%d", par), func(b *testing.B) {
			db, err := OpenBolt(b.TempDir(), BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			body := make([]byte, 13000)
			rec := Record{State: StatePhoto, Body: body, ContentType: "image/jpeg", Sum: Checksum(body),
				PulledAt: time.Now(), Timer: Timer{Kind: TimerSuccess, Until: time.Now().Add(time.Hour)}}
			b.SetParallelism(par)
			n := 0
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					n++
					if err := db.Put(context.Background(), Key{Owner: fmt.Sprintf("p%d-%d@contoso.com", i, time.Now().UnixNano()), Size: "HR648x648"}, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
