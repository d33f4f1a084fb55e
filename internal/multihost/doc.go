// Package multihost tests repld across separate hosts: every node runs in
// a Docker container of its own on a private bridge network that the test
// creates, and the test process drives them from outside, as a client and
// as an operator would. It shows what nodes sharing one loopback interface
// cannot: replicas that find the primary by its host name, a host that
// freezes (docker pause), a host cut off from the network (docker network
// disconnect), a primary host that dies (docker kill) followed by a
// promotion, and clients and operator tools reaching every node by its own
// address.
//
// The package has no code outside its tests. Its harness owns the Docker
// resources of a test run: it builds a static repld binary once per test
// binary into an image FROM scratch, gives each test its own network and
// containers, and removes all of them (and the image) at the end, whether
// the test passed or not; a failed test prints its containers' logs. Every
// docker command and every wait is bounded. Without a Docker engine (no
// docker command, or docker info failing) every test skips and says so;
// with one, any failure to build or run is a test failure.
package multihost
