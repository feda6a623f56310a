// Package source talks to the object stores that datasets live in — S3
// (through aws-sdk-go-v2) and local directories (file://) — behind one small
// interface per capability.
//
// Listing turns a dataset URI into a release.Manifest at publish time: the
// exact files, sizes, ETags and checksums that nodes will later download
// and verify. It also finds the versions present under a URI with a
// {VERSION} placeholder, for `hydra publish --version auto`.
package source
