// Package archtest holds no code: its test keeps Gust's package boundaries
// (which packages may import wazero, nats-server and the node wiring).
package archtest
