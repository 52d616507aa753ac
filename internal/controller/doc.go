// Package controller is the reconcile loop between the VPC objects and the
// virtual topology (DESIGN.md §6): it watches the VPC objects in the store,
// translates them (package translate), diffs the result against the
// topology objects it owns (label canopy.owner=translate) and writes the
// creates, updates and deletes through store transactions.
//
// Shape (the cilium/statedb reconciler and GoBGP's server loop): one writer
// loop owns all controller state and is fed events by two watchers — the
// VPC objects (list, then watch) and the topology (watch from the revision
// of the loop's last snapshot, to see an operator delete or change what the
// controller owns). The loop drains every pending event, then acts once: a
// burst costs one round, a lone change is acted on at once (no polling
// interval). Start/Stop own every goroutine; Stop waits for them.
//
// Work in proportion to the change: the desired topology is split into
// partitions (translate.TranslateVPC, TranslateCloud): one per VPC and one
// for the cloud's edge. A VPC object's change dirties the VPCs that read it
// (its own VPC; the VPCs an internet gateway is attached to; the VPC of an
// address's interface; the VPCs whose last translation looked up a DHCP
// option set, an instance or a referenced group). Only dirty partitions are
// translated — from a sub-state holding just that VPC's objects — and
// diffed; an unchanged object costs a field-by-field comparison with the
// cached one (translate.Equal, no encoding) and no write. A full resync (at
// start, after a watch was lost, after any failed round, retried with
// backoff) translates and diffs everything: a server restarting on an
// unchanged store reads, translates and compares, and writes nothing. The
// partitions' translations and comparisons run on every core, as does the
// decoding of the VPC objects listed at start; the writes stay in the loop.
//
// The cloud partition also reads the Host objects: the cloud config's
// gateways name their hosts (by name or id), which register when their
// agents start, possibly after the server. Every change to a Host dirties
// the cloud partition, whose translation binds an uplink to its host once
// exactly one host answers to the name (translate.ResolveGateway) and
// leaves it unbound, reported pending or ambiguous, until then. How each
// gateway resolved is logged once per change and kept in the status key.
//
// Safety: the controller never writes an object without the owner label:
// a create whose id an operator's object holds, and a delete whose cascade
// would take an operator's object, are refused and logged. Big change sets
// are cut into transactions of a bounded size; each piece keeps every
// reference valid (dependency order). A write that finds the store changed
// since its diff (revision guards) makes the round diff again.
//
// Progress: after the topology realizes the VPC objects as of revision V
// at topology revision T, the controller publishes Applied{V, T} to
// WaitApplied callers and writes it, with the gateways' state, to the
// store (nsdb.PutControllerStatus). That
// watermark is how a VPC object records the topology revision realizing
// it: an object written at revision ≤ V is realized at T.
//
// It must not import the EC2 or REST API packages; it does not touch
// agents' state keys.
package controller
