package fastpath

// The BPF object and its Go bindings are generated from bpf/fastpath.c and
// committed; TestGeneratedObjectsMatchSource regenerates them and compares.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type flow_key -type flow_val -type action -type port_val -type dev_val -type config -type miss fastpath bpf/fastpath.c -- -I/usr/include/x86_64-linux-gnu
