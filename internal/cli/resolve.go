package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// named is the part of every object the resolver needs.
type named struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	DeviceKind string `json:"device_kind"`
	DeviceID   string `json:"device_id"`
}

// resolve turns a name or an id of an object in collection coll (e.g.
// "routers") into its id. An id is taken as is: the API answers 404 or 400
// if it names nothing. A name must match exactly one object.
func (c *Client) resolve(ctx context.Context, coll, ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("empty %s name or id", singular(coll))
	}
	if isID(ref) {
		return ref, nil
	}
	var found []named
	if _, err := c.Get(ctx, "/"+coll+"?name="+url.QueryEscape(ref), &found); err != nil {
		return "", err
	}
	return pick(found, singular(coll), ref)
}

func pick(found []named, what, ref string) (string, error) {
	var ids []string
	for _, o := range found {
		if o.Name == ref { // the filter is exact; this guards an API without it
			ids = append(ids, o.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no %s named %q", what, ref)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%s name %q is ambiguous: %d objects have it (%s); use an id", what, ref, len(ids), strings.Join(ids, ", "))
}

// resolveDevice finds a router or a bridge by name or id and returns its
// collection and id.
func (c *Client) resolveDevice(ctx context.Context, ref string) (coll, id string, err error) {
	if isID(ref) {
		for _, coll := range []string{"routers", "bridges"} {
			_, err := c.Get(ctx, "/"+coll+"/"+ref, nil)
			if err == nil {
				return coll, ref, nil
			}
			if !IsNotFound(err) {
				return "", "", err
			}
		}
		return "", "", fmt.Errorf("no router or bridge with id %s", ref)
	}
	var found []named
	for _, coll := range []string{"routers", "bridges"} {
		var fs []named
		if _, err := c.Get(ctx, "/"+coll+"?name="+url.QueryEscape(ref), &fs); err != nil {
			return "", "", err
		}
		for _, f := range fs {
			if f.Name == ref {
				f.DeviceKind = coll
				found = append(found, f)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", "", fmt.Errorf("no router or bridge named %q", ref)
	case 1:
		return found[0].DeviceKind, found[0].ID, nil
	}
	return "", "", fmt.Errorf("device name %q is ambiguous: %d routers/bridges have it; use an id", ref, len(found))
}

// resolvePort accepts a port id, DEVICE:PORTNAME (the device a router or
// bridge name or id) or a port name unique across all ports.
func (c *Client) resolvePort(ctx context.Context, ref string) (string, error) {
	if isID(ref) {
		return ref, nil
	}
	if dev, name, ok := strings.Cut(ref, ":"); ok {
		coll, id, err := c.resolveDevice(ctx, dev)
		if err != nil {
			return "", fmt.Errorf("port %q: %w", ref, err)
		}
		return c.portOn(ctx, coll, id, name)
	}
	return c.resolve(ctx, "ports", ref)
}

// resolvePortOn resolves a port reference given in the context of a device:
// a bare name is looked up among that device's ports first.
func (c *Client) resolvePortOn(ctx context.Context, coll, devID, ref string) (string, error) {
	if isID(ref) || strings.Contains(ref, ":") {
		return c.resolvePort(ctx, ref)
	}
	id, err := c.portOn(ctx, coll, devID, ref)
	if err == nil {
		return id, nil
	}
	if gid, gerr := c.resolve(ctx, "ports", ref); gerr == nil {
		return gid, nil
	}
	return "", err
}

func (c *Client) portOn(ctx context.Context, coll, devID, name string) (string, error) {
	var ports []named
	if _, err := c.Get(ctx, "/"+coll+"/"+devID+"/ports", &ports); err != nil {
		return "", err
	}
	return pick(ports, "port on "+singular(coll)+" "+devID, name)
}

func isID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func singular(coll string) string {
	switch coll {
	case "dhcp-subnets":
		return "DHCP subnet"
	case "ip-address-groups":
		return "IP address group"
	}
	return strings.TrimSuffix(coll, "s")
}
