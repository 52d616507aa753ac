// Package keystone is a minimal OpenStack Identity v3 endpoint in front of
// Canopy's accounts, enough for the OpenStack client, openstacksdk and
// Tempest to reach the Neutron API (internal/neutron): version discovery,
// password authentication answering a token and a catalog, token
// validation, and the projects a caller may see.
//
// A project is a Canopy account. Its users are its access keys (user name
// = access key id, password = secret access key) with roles member and
// reader; the operator is user "admin" whose password is the server's admin
// token, with role admin in any project. Tokens carry their own claims
// and an HMAC under a key every server sharing the store shares, so any
// server validates any server's token and nothing is stored.
//
// It does not manage users, domains, roles or the catalog: those answer
// 403 or 404, never a fake success.
package keystone
