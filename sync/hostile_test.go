package sync_test

import (
	"bytes"
	"image"
	"net/http"
	"strings"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/photo"
)

// TestHostileBodiesAreNotStored pulls a good photo, then lets the master
// answer the next pull with each hostile body: only a decoded image,
// within its box and nothing after its end, is ever stored or served.
func TestHostileBodiesAreNotStored(t *testing.T) {
	tests := []struct {
		fault exchangetest.BodyFault
		want  error // nil: a photo is stored
		check func(t *testing.T, body []byte)
	}{
		{exchangetest.BodyPNGBomb, photo.ErrTooManyPixels, nil},
		{exchangetest.BodyJPEGBomb, photo.ErrTooManyPixels, nil},
		{exchangetest.BodyGiantPNG, photo.ErrTooManyPixels, nil},
		{exchangetest.BodyJPEGThenHTML, photo.ErrUndecodable, nil},
		{exchangetest.BodyNotImage, photo.ErrNotImage, nil},
		{exchangetest.BodyPhotoThenHTML, nil, func(t *testing.T, body []byte) {
			if bytes.Contains(body, []byte("<html")) || !bytes.HasSuffix(body, []byte{0xFF, 0xD9}) {
				t.Errorf("stored %d bytes with the page behind the image", len(body))
			}
		}},
		{exchangetest.BodyLarge, nil, func(t *testing.T, body []byte) {
			cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
			if err != nil || cfg.Width != 648 || cfg.Height != 648 {
				t.Errorf("stored %dx%d (%v), want the 1296×1296 copy scaled to 648×648", cfg.Width, cfg.Height, err)
			}
		}},
	}
	for _, derive := range []bool{false, true} {
		for _, tt := range tests {
			name := strings.ReplaceAll(faultName(tt.fault), " ", "_")
			if derive {
				name += "/derived"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Derive = derive }})
				size := photo.MasterSize
				if derive {
					size = "HR96x96"
				}
				if got, err := e.engine.Refresh(ctx(t), adele, size, false); err != nil || got != psync.RefreshPulled {
					t.Fatalf("first pull: %v, %v", got, err)
				}
				good, err := e.store.Get(ctx(t), store.Key{Owner: adele, Size: photo.MasterSize})
				if err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(7 * time.Hour)
				e.sim.SetPhotoBodyFault(tt.fault)
				e.sim.SetPhotoETag(`"hostile"`) // a new photo: no 304 for the old ETag
				got, err := e.engine.Refresh(ctx(t), adele, size, false)
				rec, gerr := e.store.Get(ctx(t), store.Key{Owner: adele, Size: photo.MasterSize})
				if gerr != nil {
					t.Fatal(gerr)
				}
				if tt.want != nil {
					if got != psync.RefreshFailed || err == nil || !strings.Contains(err.Error(), tt.want.Error()) {
						t.Fatalf("Refresh = %v, %v; want failed with %v", got, err, tt.want)
					}
					if rec.Timer.Kind != store.TimerError || !bytes.Equal(rec.Body, good.Body) || !strings.Contains(rec.Error, tt.want.Error()) {
						t.Errorf("stored: timer %v, same bytes %v, error %q; want the last good copy under the error timer",
							rec.Timer.Kind, bytes.Equal(rec.Body, good.Body), rec.Error)
					}
					resp, body := e.ownPhoto(t, adele, size)
					if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("<html")) {
						t.Errorf("served %d, %d bytes", resp.StatusCode, len(body))
					}
					return
				}
				// The derived size of a master copy cut back to the same
				// bytes is not modified.
				if err != nil || got != psync.RefreshPulled && got != psync.RefreshNotModified {
					t.Fatalf("Refresh = %v, %v", got, err)
				}
				tt.check(t, rec.Body)
				resp, body := e.ownPhoto(t, adele, size)
				if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("<html")) {
					t.Errorf("served %d with %d bytes", resp.StatusCode, len(body))
				}
			})
		}
	}
}

func faultName(f exchangetest.BodyFault) string {
	return map[exchangetest.BodyFault]string{
		exchangetest.BodyPNGBomb: "png bomb", exchangetest.BodyJPEGBomb: "jpeg bomb", exchangetest.BodyGiantPNG: "giant png",
		exchangetest.BodyJPEGThenHTML: "jpeg magic then html", exchangetest.BodyNotImage: "html as image/jpeg",
		exchangetest.BodyPhotoThenHTML: "photo then html", exchangetest.BodyLarge: "1296 px jpeg",
	}[f]
}
