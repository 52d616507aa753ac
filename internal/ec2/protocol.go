package ec2

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Namespaces of the answers.
const (
	EC2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
	STSNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// params are a request's flattened Query parameters (the last value wins for
// a repeated name).
type params map[string]string

// validate rejects what the accessors below would otherwise misread
// silently: a name or value that is not UTF-8 (JSON in the store would
// keep it as U+FFFD, altered), and a list index that is not a plain
// positive number that fits an int32 (indexes skips VpcId.99999999999999999999,
// VpcId.0 and Filter..Name, and folds VpcId.01 into VpcId.1). A part of a
// name that starts with a letter is a member name; any other is an index. The names are checked in
// sorted order so the same request always gets the same answer.
func (p params) validate() error {
	names := make([]string, 0, len(p))
	for k := range p {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !utf8.ValidString(k) {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The parameter name %q is not valid UTF-8.", k)}
		}
		if !utf8.ValidString(p[k]) {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The value of parameter %s is not valid UTF-8.", k)}
		}
		segs := strings.Split(k, ".")
		for _, seg := range segs[1:] {
			if seg != "" && ('a' <= seg[0]|0x20 && seg[0]|0x20 <= 'z') {
				continue // a member name (Filter.1.Name), not an index
			}
			n, err := strconv.ParseInt(seg, 10, 32)
			if err != nil || n < 1 || seg[0] == '0' || seg[0] == '+' {
				return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The parameter %s has an invalid list index %s: indexes are 1 to %d, without leading zeros.", k, seg, math.MaxInt32)}
			}
		}
	}
	return nil
}

// str returns a parameter ("" when absent).
func (p params) str(name string) string { return p[name] }

// has reports whether a parameter was sent.
func (p params) has(name string) bool { _, ok := p[name]; return ok }

// required returns a parameter or MissingParameter.
func (p params) required(name string) (string, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return "", &vpc.Error{Code: vpc.CodeMissingParameter, Message: fmt.Sprintf("The request must contain the parameter %s", name)}
	}
	return v, nil
}

// boolean parses a boolean parameter; absent is def.
func (p params) boolean(name string, def bool) (bool, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, invalidValue(name, v)
}

// optBool parses an optional boolean: nil when absent.
func (p params) optBool(name string) (*bool, error) {
	if !p.has(name) {
		return nil, nil
	}
	b, err := p.boolean(name, false)
	return &b, err
}

// integer parses an integer parameter; absent is def.
func (p params) integer(name string, def int) (int, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalidValue(name, v)
	}
	return n, nil
}

// list returns prefix.1, prefix.2, … in index order.
func (p params) list(prefix string) []string {
	idx := p.indexes(prefix)
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, p[prefix+"."+strconv.Itoa(i)])
	}
	return out
}

// indexes returns the sorted distinct N of every parameter named
// prefix.N or prefix.N.<rest>.
func (p params) indexes(prefix string) []int {
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// sub returns the parameters under prefix.N. as their own set.
func (p params) sub(prefix string, n int) params {
	pre := prefix + "." + strconv.Itoa(n) + "."
	out := params{}
	for k, v := range p {
		if rest, ok := strings.CutPrefix(k, pre); ok {
			out[rest] = v
		}
	}
	return out
}

func invalidValue(name, v string) *vpc.Error {
	return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter %s is invalid.", v, name)}
}

// cidr parses a required CIDR parameter.
func (p params) cidr(name string) (netip.Prefix, error) {
	v, err := p.required(name)
	if err != nil {
		return netip.Prefix{}, err
	}
	return vpc.ParseCIDR(name, v)
}

// tagSpecs returns the tags of TagSpecification.N for resourceType, and
// InvalidParameterValue for a specification naming another type.
func (p params) tagSpecs(resourceType string) (vpc.Tags, error) {
	var tags vpc.Tags
	for _, n := range p.indexes("TagSpecification") {
		s := p.sub("TagSpecification", n)
		if rt := s.str("ResourceType"); rt != resourceType {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("'%s' is not a valid taggable resource type for this operation.", rt)}
		}
		t, err := s.tags("Tag")
		if err != nil {
			return nil, err
		}
		if tags == nil {
			tags = vpc.Tags{}
		}
		for k, v := range t {
			tags[k] = v
		}
	}
	return tags, nil
}

// tags returns prefix.N.Key / prefix.N.Value.
func (p params) tags(prefix string) (vpc.Tags, error) {
	tags := vpc.Tags{}
	for _, n := range p.indexes(prefix) {
		s := p.sub(prefix, n)
		k := s.str("Key")
		if k == "" {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "Tag keys must not be empty."}
		}
		if len(k) > 128 || len(s.str("Value")) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Tag key '%s' or its value is invalid (keys up to 128 characters, not starting with aws:; values up to 256).", k)}
		}
		tags[k] = s.str("Value")
	}
	return tags, nil
}

// node is an element of an answer. The answers are built as small trees and
// written with encoding/xml's escaping, which keeps every action's shape
// readable next to AWS's documentation.
type node struct {
	name     string
	text     string
	hasText  bool
	children []*node
}

func newNode(name string) *node { return &node{name: name} }

// el adds a child element and returns it.
func (n *node) el(name string) *node {
	c := &node{name: name}
	n.children = append(n.children, c)
	return c
}

// s adds <name>text</name>.
func (n *node) s(name, text string) *node {
	n.children = append(n.children, &node{name: name, text: text, hasText: true})
	return n
}

// opt adds <name>text</name> unless text is empty.
func (n *node) opt(name, text string) *node {
	if text != "" {
		n.s(name, text)
	}
	return n
}

// b adds a boolean element.
func (n *node) b(name string, v bool) *node { return n.s(name, strconv.FormatBool(v)) }

// i adds an integer element.
func (n *node) i(name string, v int) *node { return n.s(name, strconv.Itoa(v)) }

// set adds <name/> to hold <item>s and returns it (an empty set stays in the
// answer, as AWS sends it).
func (n *node) set(name string) *node { return n.el(name) }

// item adds an <item> to a set.
func (n *node) item() *node { return n.el("item") }

// tagSet adds the <tagSet> of tags, sorted by key.
func (n *node) tagSet(tags vpc.Tags) {
	set := n.set("tagSet")
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set.item().s("key", k).s("value", tags[k])
	}
}

func (n *node) write(b *bytes.Buffer) {
	b.WriteByte('<')
	b.WriteString(n.name)
	b.WriteByte('>')
	if n.hasText {
		_ = xml.EscapeText(b, []byte(n.text))
	}
	for _, c := range n.children {
		c.write(b)
	}
	b.WriteString("</")
	b.WriteString(n.name)
	b.WriteByte('>')
}

// document renders a success answer: <{root} xmlns=ns>children</{root}>.
func document(root, ns string, body *node) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString("<" + root + ` xmlns="` + ns + `">`)
	for _, c := range body.children {
		c.write(&b)
	}
	b.WriteString("</" + root + ">")
	return b.Bytes()
}

// errorDocument renders AWS's error answer. Note RequestID's spelling, which
// differs from the success answers' requestId.
func errorDocument(code vpc.Code, message, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString("<Response><Errors><Error><Code>")
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString("</Message></Error></Errors><RequestID>")
	_ = xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestID></Response>")
	return b.Bytes()
}

// stsErrorDocument renders the STS (awsquery) error answer.
func stsErrorDocument(code vpc.Code, message, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<ErrorResponse xmlns="` + STSNamespace + `"><Error><Type>Sender</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString("</Message></Error><RequestId>")
	_ = xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ErrorResponse>")
	return b.Bytes()
}
