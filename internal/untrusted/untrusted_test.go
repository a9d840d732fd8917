package untrusted

import "testing"

func TestText(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"plain", 0, "plain"},
		{"  padded \t", 0, "padded"},
		{"a\r\nb\x1b[31m", 0, "a  b?[31m"},
		{"tab\there", 0, "tab here"},
		{"Adèle", 0, "Adèle"},
		{"bad\xffutf8", 0, "bad?utf8"},
		{"line\u2028sep", 0, "line?sep"},
		{"abcdef", 3, "abc…"},
		{"abc", 3, "abc"},
	} {
		if got := Text(tc.in, tc.limit); got != tc.want {
			t.Errorf("Text(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}
