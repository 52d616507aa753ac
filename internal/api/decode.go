package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// maxBody bounds a request body; the largest objects (a chain with
// thousands of rules) stay well below it.
const maxBody = 4 << 20

// decode reads the request body into v strictly: no unknown fields, exactly
// one JSON value. Errors name the offending field (as a JSON path such as
// "rules[0].nw_src") or the byte offset of a syntax error.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &httpError{status: http.StatusRequestEntityTooLarge, reason: fmt.Sprintf("request body is larger than %d bytes", mb.Limit)}
		}
		return &httpError{status: http.StatusBadRequest, reason: "reading request body: " + err.Error()}
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &httpError{status: http.StatusBadRequest, reason: "request body is empty; a JSON object is required"}
	}
	if err := checkText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return &httpError{status: http.StatusBadRequest, reason: fmt.Sprintf("malformed JSON: unexpected data after the object at offset %d", dec.InputOffset())}
		}
		if bytes.Contains(body, []byte(`"mac"`)) {
			var doc any
			if json.Unmarshal(body, &doc) == nil {
				if path := zeroMAC(doc, ""); path != "" {
					return &topology.FieldError{Field: path, Reason: "00:00:00:00:00:00 is not an address a port or host can have; leave mac out to have none (or, on a router port, one generated)"}
				}
			}
		}
		return nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return &httpError{status: http.StatusBadRequest, reason: fmt.Sprintf("malformed JSON at offset %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &httpError{status: http.StatusBadRequest, reason: fmt.Sprintf("malformed JSON: unexpected end of input at offset %d", len(body))}
	}
	// The standard decoder does not say which field a text value (address,
	// MAC, prefix) failed in, nor the full path of an unknown field: walk
	// the body against the type to find it.
	if path, reason, ok := locate(reflect.TypeOf(v), body, ""); ok {
		return &topology.FieldError{Field: path, Reason: reason}
	}
	return &httpError{status: http.StatusBadRequest, reason: strings.TrimPrefix(err.Error(), "json: ")}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// leaf reports whether t is decoded as a single value (no fields to walk).
func leaf(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	if p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Array, reflect.Map:
		return false
	}
	return true
}

// locate finds the first value in raw that does not decode into t. It
// returns its JSON path and a reason.
func locate(t reflect.Type, raw []byte, path string) (string, string, bool) {
	for t.Kind() == reflect.Pointer {
		if string(bytes.TrimSpace(raw)) == "null" {
			return "", "", false
		}
		t = t.Elem()
	}
	if leaf(t) {
		err := json.Unmarshal(raw, reflect.New(t).Interface())
		if err == nil {
			return "", "", false
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return path, fmt.Sprintf("expected %s, got %s", describe(t), te.Value), true
		}
		return path, strings.TrimPrefix(err.Error(), "json: "), true
	}
	switch t.Kind() {
	case reflect.Struct:
		dec := json.NewDecoder(bytes.NewReader(raw))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return path, "expected a JSON object, got " + jsonKind(raw), true
		}
		fields := jsonFields(t)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", "", false
			}
			key, _ := tok.(string)
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return "", "", false
			}
			f, ok := lookupField(fields, key)
			if !ok {
				return join(path, key), "unknown field", true
			}
			if p, reason, bad := locate(f.typ, val, join(path, f.name)); bad {
				return p, reason, true
			}
		}
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return path, "expected a JSON array, got " + jsonKind(raw), true
		}
		for i, e := range elems {
			if p, reason, bad := locate(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); bad {
				return p, reason, true
			}
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return path, "expected a JSON object, got " + jsonKind(raw), true
		}
		for k, e := range m {
			if p, reason, bad := locate(t.Elem(), e, join(path, k)); bad {
				return p, reason, true
			}
		}
	}
	return "", "", false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonKind names the kind of a JSON value for an error message.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// describe names what a leaf type accepts, for an error message.
func describe(t reflect.Type) string {
	switch t {
	case typeAddr:
		return "an IP address string"
	case typePrefix:
		return "an address/prefix-length string"
	case typeMAC:
		return "a MAC address string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer from 0 to " + strconv.FormatUint(1<<(t.Bits())-1, 10)
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// field is one JSON property of a struct type.
type field struct {
	name      string
	typ       reflect.Type
	omitEmpty bool
}

// jsonFields lists t's JSON properties the way encoding/json sees them:
// tag names, untagged embedded structs flattened, "-" skipped.
func jsonFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				out = append(out, jsonFields(et)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{name: name, typ: ft, omitEmpty: strings.Contains(opts, "omit")})
	}
	return out
}

// lookupField matches a key exactly, then case-insensitively, as
// encoding/json does.
func lookupField(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return field{}, false
}

// checkText refuses a body whose strings the JSON decoder would alter
// silently: bytes that are not UTF-8 (JSON text must be, RFC 8259 §8.1) and
// \u escapes of unpaired UTF-16 surrogates. The decoder turns both into
// U+FFFD, so a name would be stored other than it was sent.
func checkText(body []byte) error {
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, n := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return &httpError{status: http.StatusBadRequest, reason: fmt.Sprintf("request body is not valid UTF-8 (byte 0x%02x at offset %d); JSON text must be UTF-8", body[off], off)}
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(body):
			if body[i+1] != 'u' {
				i++ // an escaped character: \" does not end the string
				continue
			}
			r1, ok := hex4(body, i+2)
			if !ok {
				continue // malformed: the decoder reports it
			}
			if !utf16.IsSurrogate(r1) {
				i += 5
				continue
			}
			r2, ok := rune(0), i+7 < len(body) && body[i+6] == '\\' && body[i+7] == 'u'
			if ok {
				r2, ok = hex4(body, i+8)
			}
			if !ok || utf16.DecodeRune(r1, r2) == utf8.RuneError {
				return &httpError{status: http.StatusBadRequest, reason: fmt.Sprintf("request body has an unpaired UTF-16 surrogate %s at offset %d; a string must encode whole characters", body[i:i+6], i)}
			}
			i += 11
		}
	}
	return nil
}

// hex4 parses the 4 hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}

// zeroMAC returns the path of the first "mac" property of doc that is the
// all-zero MAC. The topology keeps a zero MAC as "not set", so a zero sent
// explicitly would otherwise be read as absent instead of refused.
func zeroMAC(doc any, path string) string {
	switch d := doc.(type) {
	case map[string]any:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if s, ok := d[k].(string); ok && k == "mac" {
				if m, err := topology.ParseMAC(s); err == nil && m.IsZero() {
					return join(path, k)
				}
			}
			if p := zeroMAC(d[k], join(path, k)); p != "" {
				return p
			}
		}
	case []any:
		for i, e := range d {
			if p := zeroMAC(e, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}
