package directory

import (
	"errors"
	"io"
	"testing"
)

func TestRemoteErrorIsCleanedAndUnwraps(t *testing.T) {
	cause := errors.Join(io.ErrUnexpectedEOF, errors.New("server said\r\nFAKE LOG LINE\x1b[31m"))
	err := remote(cause)
	if got, want := err.Error(), "unexpected EOF server said  FAKE LOG LINE?[31m"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the cause is lost")
	}
}
