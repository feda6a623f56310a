// Package release holds Hydra's domain types — channels, releases, datasets,
// manifests and node reports — as plain values with their validation rules.
//
// It does no I/O: every other package (the store, the manager, the node
// agent, the CLI) builds on these types, so a value that passed Validate here
// is safe to store, serve and turn into paths on a node.
package release
