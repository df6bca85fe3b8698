// Package substrate owns Gust's durable state: a NATS server with JetStream,
// embedded in-process by default, or an external NATS cluster. It hands out
// a JetStream context and creates the buckets and streams the node needs.
//
// This is the only package allowed to import nats-server. The embedded server
// listens on no TCP port unless one is asked for, stores under the data
// directory, and fsyncs every write (SyncAlways), so an acknowledged write
// survives a crash.
package substrate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where state lives.
type Config struct {
	// DataDir holds the embedded server's JetStream files (DataDir/jetstream).
	DataDir string
	// URL, when set, connects to an external NATS server instead of
	// embedding one.
	URL string
	// Port, when non-zero, makes the embedded server listen on TCP
	// 127.0.0.1:Port (-1 for a random port). Zero means in-process only.
	Port int
	// ServerName names the embedded server; default "gust".
	ServerName string
}

// Substrate is a live connection to JetStream, owning the embedded server
// when there is one. Its methods are safe for concurrent use.
type Substrate struct {
	srv    *server.Server // nil for an external server
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed once nc is closed
}

// Open starts (or connects to) NATS with JetStream.
func Open(ctx context.Context, cfg Config) (*Substrate, error) {
	if cfg.URL != "" {
		closed := make(chan struct{})
		nc, err := nats.Connect(cfg.URL, nats.Name("gust"), nats.MaxReconnects(-1), closedHandler(closed))
		if err != nil {
			return nil, fmt.Errorf("connect to nats at %s: %w", cfg.URL, err)
		}
		return newSubstrate(nil, nc, closed)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("substrate: a data directory is required for the embedded server")
	}
	name := cfg.ServerName
	if name == "" {
		name = "gust"
	}
	opts := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.Port == 0,
		Host:       "127.0.0.1",
		Port:       cfg.Port,
		// Code and payloads are sent in one message each.
		MaxPayload: 64 * 1024 * 1024,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create embedded nats server: %w", err)
	}
	srv.Start()
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !srv.ReadyForConnections(deadline) {
		srv.Shutdown()
		return nil, errors.New("embedded nats server did not become ready")
	}
	closed := make(chan struct{})
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("gust"), closedHandler(closed))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	s, err := newSubstrate(srv, nc, closed)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	return s, nil
}

func closedHandler(closed chan struct{}) nats.Option {
	return nats.ClosedHandler(func(*nats.Conn) { close(closed) })
}

func newSubstrate(srv *server.Server, nc *nats.Conn, closed chan struct{}) (*Substrate, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Substrate{srv: srv, nc: nc, js: js, closed: closed}, nil
}

// JetStream returns the JetStream context.
func (s *Substrate) JetStream() jetstream.JetStream { return s.js }

// Conn returns the core NATS connection.
func (s *Substrate) Conn() *nats.Conn { return s.nc }

// ClientURL is the embedded server's TCP URL, or "" when it listens on none.
func (s *Substrate) ClientURL() string {
	if s.srv == nil || s.srv.Addr() == nil {
		return ""
	}
	return s.srv.ClientURL()
}

// KeyValue creates or opens a file-backed KV bucket.
func (s *Substrate) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Storage = jetstream.FileStorage
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// ObjectStore creates or opens a file-backed object store.
func (s *Substrate) ObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Storage = jetstream.FileStorage
	os, err := s.js.CreateOrUpdateObjectStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", cfg.Bucket, err)
	}
	return os, nil
}

// Stream creates or updates a file-backed stream.
func (s *Substrate) Stream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Storage = jetstream.FileStorage
	st, err := s.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// Close drains the connection and stops the embedded server.
func (s *Substrate) Close() error {
	var err error
	if s.nc != nil {
		if derr := s.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
			err = derr
		}
		// Drain is asynchronous; wait for it to finish, within reason.
		select {
		case <-s.closed:
		case <-time.After(5 * time.Second):
			s.nc.Close()
		}
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	return err
}
