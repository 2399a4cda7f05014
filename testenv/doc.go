// Package testenv starts the real servers Circle's tests talk to — kube-apiserver with etcd,
// an S3 server (versitygw), Azurite, fake-gcs-server, and git remotes over file://, smart
// HTTP and SSH — on 127.0.0.1, on free ports, for the life of one test binary.
//
// The binaries are built or installed by install.sh (`make testenv`) into a cache outside the
// repository; this package only finds and starts them. A test that needs a server that is not
// installed fails with a message naming `make testenv`: a missing server is a broken machine,
// not a reason to skip.
//
// Servers are started lazily by the first test that asks for one and shared by the rest of
// the package; a package that uses any of them runs its tests through Main so they are
// stopped at the end:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv
