package configs

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration read from YAML as a Go duration string
// ("90s", "15m", "2h30m"). A bare number is refused: only the two
// SharePoint timers (Hours) read one as hours, and "timeout: 15" meaning
// fifteen hours is a mistake no one means. "0" is accepted: it is zero in
// every unit.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s", n.Line, durationWant)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

const (
	durationWant = "want a duration with a unit, such as 90s, 15m or 6h"
	hoursWant    = "want a duration such as 6h or 90m, or a number of hours"
)

// ParseDuration reads a Go duration with its unit: "6h", "90s", "2h30m".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("%s: %q has none (only photos.expiration and photos.error_expiration read a bare number, as hours)", durationWant, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s, got %q", durationWant, s)
	}
	return d, nil
}

// Hours is a Duration that also reads a bare number as hours ("6", "0.5"),
// as SharePoint's UserPhotoExpiration and UserPhotoErrorExpiration are
// written; photos.expiration and photos.error_expiration are Hours.
type Hours time.Duration

// D returns h as a time.Duration.
func (h Hours) D() time.Duration { return time.Duration(h) }

// String formats h like time.Duration.
func (h Hours) String() string { return time.Duration(h).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (h *Hours) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s", n.Line, hoursWant)
	}
	v, err := ParseHours(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*h = Hours(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (h Hours) MarshalYAML() (any, error) { return h.String(), nil }

// ParseHours reads "6h", "90s" or a bare number of hours ("6", "0.5").
func ParseHours(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		h := f * float64(time.Hour)
		if math.IsNaN(h) || math.IsInf(h, 0) || math.Abs(h) > math.MaxInt64 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(h), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s, got %q", hoursWant, s)
	}
	return d, nil
}

// ByteSize is a number of bytes read from YAML as a plain number or with a
// unit: KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a size such as 4MiB", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// String formats b with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

var sizeRE = regexp.MustCompile(`^(\d+)\s*([KMG]i?B|B)?$`)

// ParseByteSize reads "4194304", "4MiB", "512KiB" or "1GB".
func ParseByteSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("want a size such as 4MiB or 4194304, got %q", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	mult := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]]
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	return n * mult, nil
}

// keysOf lists the dotted YAML key paths a value of v's type accepts, with
// an empty entry for every mapping (so "photos" and "photos.expiration").
func keysOf(v any) map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := prefix + name
			keys[path] = true
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(f.Type, path+".")
			}
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				walk(f.Type.Elem(), path+".") // keys of each list item
			}
		}
	}
	walk(reflect.TypeOf(v), "")
	return keys
}

// checkKeys reports every key in the mapping n (at prefix) that known does
// not list, so a misspelt key is an error rather than silently ignored.
func checkKeys(n *yaml.Node, prefix string, known map[string]bool) error {
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			return fmt.Errorf("line %d: the config must be a mapping of keys", n.Line)
		}
		return nil
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := prefix + k.Value
		if !known[path] {
			errs = append(errs, fmt.Errorf("line %d: %s: unknown key%s", k.Line, path, suggest(path, known)))
			continue
		}
		if v.Kind == yaml.MappingNode {
			if err := checkKeys(v, path+".", known); err != nil {
				errs = append(errs, err)
			}
		}
		if v.Kind == yaml.SequenceNode {
			for _, item := range v.Content {
				if item.Kind != yaml.MappingNode {
					continue
				}
				if err := checkKeys(item, path+".", known); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// suggest names the known keys under the same parent, to help with typos.
func suggest(path string, known map[string]bool) string {
	parent := ""
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent = path[:i+1]
	}
	var sib []string
	for k := range known {
		if strings.HasPrefix(k, parent) && !strings.Contains(k[len(parent):], ".") {
			sib = append(sib, k)
		}
	}
	if len(sib) == 0 {
		return ""
	}
	sort.Strings(sib)
	return " (known here: " + strings.Join(sib, ", ") + ")"
}

// lineOf finds the line of a dotted key in the document, or 0.
func lineOf(doc *yaml.Node, path string) int {
	n := doc
	line := 0
	for _, part := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}

// cleanDecodeError turns yaml's type errors ("cannot unmarshal !!str `x`
// into bool") into lines an operator can act on.
func cleanDecodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var errs []error
	for _, e := range te.Errors {
		e = strings.Replace(e, "cannot unmarshal !!str", "cannot read the text", 1)
		e = strings.Replace(e, "cannot unmarshal !!int", "cannot read the number", 1)
		e = strings.Replace(e, "cannot unmarshal !!seq", "cannot read a list", 1)
		e = strings.Replace(e, "cannot unmarshal !!map", "cannot read a mapping", 1)
		errs = append(errs, errors.New(e))
	}
	return errors.Join(errs...)
}

// checkTypes decodes every value in the mapping n (at prefix) into its
// field of t on its own, so that a value of the wrong kind is reported with
// its key and line ("line 4: exchange.max_concurrency: want a whole number,
// got "lots"") rather than as yaml's "cannot unmarshal !!str into int", and
// every such problem at once. Keys checkKeys refused are skipped.
func checkTypes(n *yaml.Node, t reflect.Type, prefix string) []error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok || v.ShortTag() == "!!null" {
			continue
		}
		path := prefix + k.Value
		switch {
		case ft.Kind() == reflect.Struct && v.Kind == yaml.MappingNode:
			errs = append(errs, checkTypes(v, ft, path+".")...)
			continue
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && v.Kind == yaml.SequenceNode:
			for j, item := range v.Content {
				if item.Kind != yaml.MappingNode {
					errs = append(errs, fmt.Errorf("line %d: %s: entry %d: want a mapping of keys, got %s", item.Line, path, j+1, kindOf(item)))
					continue
				}
				errs = append(errs, checkTypes(item, ft.Elem(), path+".")...)
			}
			continue
		}
		if err := v.Decode(reflect.New(ft).Interface()); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %s", k.Line, path, wantOf(ft, v, err)))
		}
	}
	return errs
}

var linePrefixRE = regexp.MustCompile(`^line \d+: `)

// wantOf says what a key of type t wants, for a value v that did not decode
// with err; it never names a Go type.
func wantOf(t reflect.Type, v *yaml.Node, err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) { // our own UnmarshalYAML said why
		return linePrefixRE.ReplaceAllString(err.Error(), "")
	}
	got := kindOf(v)
	switch t.Kind() {
	case reflect.Bool:
		return "want true or false, got " + got
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "want a whole number, got " + got
	case reflect.String:
		return "want text, got " + got
	case reflect.Slice:
		return "want a list of text such as [a, b], got " + got
	case reflect.Struct:
		return "want a mapping of keys, got " + got
	}
	return "cannot read " + got
}

// kindOf describes a YAML value for an error message.
func kindOf(v *yaml.Node) string {
	switch v.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(v.Value)
}
