package ec2

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// filter is one Filter.N: a name and its values (ORed); filters are ANDed.
type filter struct {
	name   string
	values []string
}

// fields are a resource's filterable values by filter name. Every name a
// describe call accepts is a key, even when the resource has no value for it.
type fields map[string][]string

// resource describes one resource type to describe(): its id kind and id
// list parameter, and how to read its id, owner, filter fields and tags.
type resource[T any] struct {
	kind    vpc.IDKind
	idParam string // "VpcId" for VpcId.N; "" when the call takes no ids
	id      func(*T) string
	owner   func(*T) string
	fields  func(*T) fields
	tags    func(*T) vpc.Tags
	maxPage int // largest MaxResults; 0 = not paginated
}

// parseFilters reads Filter.N.Name / Filter.N.Value.M and checks every name
// against the names the resource type knows.
func parseFilters(p params, known fields) ([]filter, error) {
	var out []filter
	for _, n := range p.indexes("Filter") {
		s := p.sub("Filter", n)
		f := filter{name: s.str("Name"), values: s.list("Value")}
		if _, ok := known[f.name]; !ok {
			// The older camelCase spellings SDKs and terraform still send
			// (isDefault, cidrBlock, availabilityZoneId, …).
			if k := kebab(f.name); k != f.name {
				if _, ok := known[k]; ok {
					f.name = k
				}
			}
		}
		_, ok := known[f.name]
		if !ok && !strings.HasPrefix(f.name, "tag:") && f.name != "tag-key" && f.name != "tag-value" {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The filter '%s' is invalid", f.name)}
		}
		out = append(out, f)
	}
	return out, nil
}

// matches reports whether a resource passes every filter.
func matches(fs []filter, fl fields, tags vpc.Tags) bool {
	for _, f := range fs {
		var have []string
		switch {
		case strings.HasPrefix(f.name, "tag:"):
			v, ok := tags[strings.TrimPrefix(f.name, "tag:")]
			if !ok {
				return false
			}
			have = []string{v}
		case f.name == "tag-key":
			for k := range tags {
				have = append(have, k)
			}
		case f.name == "tag-value":
			for _, v := range tags {
				have = append(have, v)
			}
		default:
			have = fl[f.name]
		}
		if !anyMatch(f.values, have) {
			return false
		}
	}
	return true
}

func anyMatch(patterns, have []string) bool {
	for _, p := range patterns {
		for _, h := range have {
			if glob(p, h) {
				return true
			}
		}
	}
	return false
}

// glob matches s against a pattern with EC2's wildcards: * (any run) and ?
// (one character). Backslash escapes a wildcard.
func glob(pattern, s string) bool {
	p, str := []rune(pattern), []rune(s)
	var match func(i, j int) bool
	memo := map[[2]int]bool{}
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(p):
			r = j == len(str)
		case p[i] == '*':
			r = match(i+1, j) || (j < len(str) && match(i, j+1))
		case p[i] == '?':
			r = j < len(str) && match(i+1, j+1)
		case p[i] == '\\' && i+1 < len(p):
			r = j < len(str) && p[i+1] == str[j] && match(i+2, j+1)
		default:
			r = j < len(str) && p[i] == str[j] && match(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return match(0, 0)
}

// describe selects the caller's resources for a Describe* call: by the id
// list parameter (each must exist: NotFound otherwise), then by filters,
// sorted by id, then paginated when maxPage > 0.
func describe[T any](c *call, all map[string]*T, r resource[T]) ([]*T, string, error) {
	return describeOwned(c, all, nil, r)
}

// describeOwned is describe for a collection the VPC state indexes by
// owner (vpc.State.OwnedVpcs, …): without an id list it reads owned(the
// caller), not every account's objects.
func describeOwned[T any](c *call, all map[string]*T, owned func(owner string) []*T, r resource[T]) ([]*T, string, error) {
	owner, idParam, kind, fl, tags, maxPage := r.owner, r.idParam, r.kind, r.fields, r.tags, r.maxPage
	var zero T
	fs, err := parseFilters(c.p, fl(&zero))
	if err != nil {
		return nil, "", err
	}
	var ids []string
	if idParam != "" {
		if ids, err = c.ids(idParam, kind); err != nil {
			return nil, "", err
		}
	}
	var cand []*T
	if len(ids) > 0 {
		seen := map[string]bool{}
		for _, id := range ids {
			v := all[id]
			if v == nil || owner(v) != c.acct {
				return nil, "", kind.NotFoundError(id)
			}
			if !seen[id] {
				seen[id] = true
				cand = append(cand, v)
			}
		}
	} else if owned != nil {
		for _, v := range owned(c.acct) {
			if owner(v) == c.acct {
				cand = append(cand, v)
			}
		}
	} else {
		for _, v := range all {
			if owner(v) == c.acct {
				cand = append(cand, v)
			}
		}
	}
	type keyed struct {
		id string
		v  *T
	}
	var out []keyed
	for _, v := range cand {
		f := fl(v)
		if matches(fs, f, tags(v)) {
			out = append(out, keyed{r.id(v), v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	res := make([]*T, len(out))
	idsOut := make([]string, len(out))
	for i, k := range out {
		res[i], idsOut[i] = k.v, k.id
	}
	if maxPage <= 0 {
		return res, "", nil
	}
	lo, hi, next, err := paginate(c.p, idsOut, maxPage)
	if err != nil {
		return nil, "", err
	}
	return res[lo:hi], next, nil
}

// paginate applies MaxResults/NextToken to a sorted id list: it returns the
// page's bounds and the token of the next page ("" at the end). The token is
// the last id handed out, so pages stay right while resources come and go.
func paginate(p params, ids []string, maxPage int) (int, int, string, error) {
	limit := len(ids)
	if p.has("MaxResults") {
		n, err := p.integer("MaxResults", 0)
		if err != nil {
			return 0, 0, "", err
		}
		if n < 5 || n > maxPage {
			return 0, 0, "", &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and %d.", n, maxPage)}
		}
		limit = n
	}
	lo := 0
	if tok := p.str("NextToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		after, ok := strings.CutPrefix(string(b), "after:")
		if err != nil || !ok {
			return 0, 0, "", &vpc.Error{Code: vpc.CodeInvalidPaginationToken, Message: "Invalid pagination token: " + tok}
		}
		lo = sort.SearchStrings(ids, after)
		if lo < len(ids) && ids[lo] == after {
			lo++
		}
	}
	hi := min(lo+limit, len(ids))
	next := ""
	if hi < len(ids) {
		next = base64.RawURLEncoding.EncodeToString([]byte("after:" + ids[hi-1]))
	}
	return lo, hi, next, nil
}

func boolStr(b bool) string { return strconv.FormatBool(b) }

// kebab spells a camelCase filter name the current way: availabilityZoneId
// → availability-zone-id.
func kebab(name string) string {
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
