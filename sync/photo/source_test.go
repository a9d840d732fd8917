package photo_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"photosync/sync/photo"
)

func tinyJPEG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTrace checks that Trace reports the answers a pull walks through
// and stops where a pull stops.
func TestTrace(t *testing.T) {
	jpg := tinyJPEG(t)
	says := func(name string, res photo.Result, err error) photo.Source {
		return photo.Func{SourceName: name, Func: func(context.Context, string, string, string) (photo.Result, error) {
			return res, err
		}}
	}
	pic := photo.Result{Status: photo.StatusPhoto, Body: jpg}
	down := errors.New("connection refused")
	tests := []struct {
		name    string
		sources []photo.Source
		want    string // source:status or source:error, in order
	}{
		{"first photo wins", []photo.Source{says("a", pic, nil), says("b", pic, nil)}, "a:photo"},
		{"no photo falls through", []photo.Source{says("a", photo.Result{Status: photo.StatusNoPhoto}, nil), says("b", pic, nil)}, "a:no photo b:photo"},
		{"deleted stops the walk", []photo.Source{says("a", photo.Result{Status: photo.StatusDeleted}, nil), says("b", pic, nil)}, "a:deleted"},
		{"an error stops the walk", []photo.Source{says("a", photo.Result{}, down), says("b", pic, nil)}, "a:error"},
		{"bytes that are no image are an error", []photo.Source{says("a", photo.Result{Status: photo.StatusPhoto, Body: []byte("<html>")}, nil), says("b", pic, nil)}, "a:error"},
		{"nobody has one", []photo.Source{says("a", photo.Result{Status: photo.StatusNoPhoto}, nil)}, "a:no photo"},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range photo.Trace(context.Background(), tt.sources, "x@contoso.com", "HR96x96", nil) {
			what := a.Result.Status.String()
			if a.Err != nil {
				what = "error"
			} else if a.Result.Status == photo.StatusPhoto && a.Result.ContentType != "image/jpeg" {
				what = "photo of type " + a.Result.ContentType
			}
			got = append(got, a.Source+":"+what)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, g, tt.want)
		}
	}
}

// TestWalkName: the walk's result carries the first display name any
// source it asked gave, whichever source ended it.
func TestWalkName(t *testing.T) {
	jpg := tinyJPEG(t)
	says := func(name string, res photo.Result) photo.Source {
		return photo.Func{SourceName: name, Func: func(context.Context, string, string, string) (photo.Result, error) {
			return res, nil
		}}
	}
	none := photo.Result{Status: photo.StatusNoPhoto}
	named := photo.Result{Status: photo.StatusNoPhoto, Name: "Lee Gu"}
	tests := []struct {
		name    string
		sources []photo.Source
		want    string
	}{
		{"nobody names them", []photo.Source{says("a", none), says("b", none)}, ""},
		{"a source with no photo names them", []photo.Source{says("a", named), says("b", none)}, "Lee Gu"},
		{"the photo's source does not", []photo.Source{says("a", named), says("b", photo.Result{Status: photo.StatusPhoto, Body: jpg})}, "Lee Gu"},
		{"the first name wins", []photo.Source{says("a", named), says("b", photo.Result{Status: photo.StatusPhoto, Body: jpg, Name: "Lee"})}, "Lee Gu"},
	}
	for _, tt := range tests {
		f, err := photo.Walk(context.Background(), tt.sources, "lee.gu@contoso.com", "HR96x96", "", "", nil, nil)
		if err != nil || f.Result.Name != tt.want {
			t.Errorf("%s: name %q (%v), want %q", tt.name, f.Result.Name, err, tt.want)
		}
	}
}
