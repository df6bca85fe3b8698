//go:build linux

package process

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// dialAs connects to addr from a socket of family (AF_INET, or AF_INET6
// with the v4-mapped address: listed in /proc/net/tcp6, not tcp) created
// with fsuid uid (the socket's owner, as for a function's process; -1:
// the test's own). A server that resets at once may make it fail with
// ECONNRESET.
func dialAs(t *testing.T, family int, addr *net.TCPAddr, uid int) (net.Conn, error) {
	t.Helper()
	runtime.LockOSThread()
	if uid >= 0 {
		if err := syscall.Setfsuid(uid); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if uid >= 0 {
		if err := syscall.Setfsuid(os.Geteuid()); err != nil {
			t.Fatal(err) // the thread stays locked: it dies with the test
		}
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Skipf("socket(%d): %v", family, err)
	}
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: addr.Port, Addr: [4]byte(addr.IP.To4())}
	if family == syscall.AF_INET6 {
		sa = &syscall.SockaddrInet6{Port: addr.Port, Addr: [16]byte(addr.IP.To16())}
	}
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		if errors.Is(err, syscall.ECONNRESET) {
			return nil, err
		}
		t.Skipf("connecting socket(%d) to %v: %v", family, addr, err)
	}
	f := os.NewFile(uintptr(fd), "client")
	defer f.Close()
	return net.FileConn(f)
}

var families = []struct {
	name   string
	family int
}{{"ipv4", syscall.AF_INET}, {"ipv6 v4-mapped", syscall.AF_INET6}}

func TestPeerUID(t *testing.T) {
	owners := []int{-1}
	if os.Geteuid() == 0 {
		owners = append(owners, 4242)
	}
	for _, lookup := range []struct {
		name string
		uid  func(local, remote *net.TCPAddr) (int, error)
	}{{"sock_diag", diagSocketUID}, {"proc", procSocketUID}, {"either", nil}} {
		for _, fam := range families {
			for _, owner := range owners {
				want := owner
				if owner == -1 {
					want = os.Geteuid()
				}
				t.Run(fmt.Sprintf("%s/%s/uid%d", lookup.name, fam.name, want), func(t *testing.T) {
					ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
					c, err := dialAs(t, fam.family, ln.Addr().(*net.TCPAddr), owner)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
					s, err := ln.Accept()
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					var uid int
					if lookup.uid == nil {
						uid, err = peerUID(s)
					} else {
						uid, err = lookup.uid(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr))
					}
					if err != nil || uid != want {
						t.Errorf("uid of the client %s = %d, %v, want %d", s.RemoteAddr(), uid, err, want)
					}
					// No such socket.
					nobody := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
					if lookup.uid != nil {
						if uid, err := lookup.uid(nobody, s.LocalAddr().(*net.TCPAddr)); !errors.Is(err, errNoPeer) {
							t.Errorf("uid of no socket = %d, %v, want errNoPeer", uid, err)
						}
						// A packet to the listener's port would find it.
						if uid, err := lookup.uid(s.LocalAddr().(*net.TCPAddr), nobody); !errors.Is(err, errNoPeer) {
							t.Errorf("uid of a connection to the listener from %v = %d, %v, want errNoPeer", nobody, uid, err)
						}
					}
				})
			}
		}
	}
}

func TestFindSocketUID(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1141 1 0 100 0 0 10 0
   1: 0100007F:D431 0100007F:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 200007        0 7408 1 0 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 7409 1 0 20 4 30 10 -1
  10: 0100007F:D432 0100007F:1F90 01 00000000:00000000 00:00000000 00000000   993        0 7410 1 0 20 4 30 10 -1`
	for _, tc := range []struct {
		key     string
		wantUID int
		wantOK  bool
	}{
		{"0100007F:D431 0100007F:1F90 ", 200007, true}, // after its TIME_WAIT namesake
		{"0100007F:1F90 0100007F:D431 ", 0, true},      // the server's end
		{"0100007F:D432 0100007F:1F90 ", 993, true},    // last row, no newline
		{"0100007F:1F90 00000000:0000 ", -1, false},    // a listener
		{"0100007F:D433 0100007F:1F90 ", -1, false},    // gone
		{"00000000:0000 0A 00000000:", -1, false},      // not at a row's start
	} {
		t.Run(tc.key, func(t *testing.T) {
			uid, ok := findSocketUID([]byte(table), []byte(tc.key))
			if uid != tc.wantUID || ok != tc.wantOK {
				t.Errorf("findSocketUID(%q) = %d, %v, want %d, %v", tc.key, uid, ok, tc.wantUID, tc.wantOK)
			}
		})
	}
}

// FuzzFindSocketUID: any table text yields a uid or none, never a panic.
func FuzzFindSocketUID(f *testing.F) {
	f.Add([]byte("   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 200007 0 7408\n"), []byte("0100007F:D431 0100007F:1F90 "))
	f.Add([]byte(": \n: x"), []byte(": "))
	f.Fuzz(func(t *testing.T, table, key []byte) {
		if len(key) == 0 {
			return
		}
		if uid, ok := findSocketUID(table, key); ok != (uid >= 0) {
			t.Fatalf("findSocketUID = %d, %v", uid, ok)
		}
	})
}

// TestListenerRefusesOtherUIDs: a connection whose client socket is not
// the instance's uid is reset before the server reads a byte.
func TestListenerRefusesOtherUIDs(t *testing.T) {
	for _, fam := range families {
		for _, tc := range []struct {
			name     string
			uid      int
			wantOpen bool
		}{
			{"own uid", os.Geteuid(), true},
			{"another uid", os.Geteuid() + 1, false},
			{"no check", -1, true},
		} {
			t.Run(fam.name+"/"+tc.name, func(t *testing.T) {
				raw, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				in := &instance{}
				ln := &instListener{Listener: raw, inst: in, uid: tc.uid}
				accepted := make(chan net.Conn, 1)
				go func() {
					c, err := ln.Accept()
					if err == nil {
						accepted <- c
					}
					close(accepted)
				}()
				var werr error
				c, derr := dialAs(t, fam.family, raw.Addr().(*net.TCPAddr), -1)
				if derr == nil {
					defer c.Close()
					_, werr = c.Write([]byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"))
				}
				if (derr != nil || werr != nil) && tc.wantOpen {
					t.Fatal(derr, werr)
				}
				if tc.wantOpen {
					s, ok := <-accepted
					if !ok {
						t.Fatal("Accept failed")
					}
					defer s.Close()
					if _, err := s.Write([]byte("x")); err != nil {
						t.Fatal(err)
					}
				}
				if derr == nil {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, err = c.Read(make([]byte, 1))
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("Read() = %v: the connection was neither served nor reset", err)
				}
				ln.Close()
				if _, ok := <-accepted; ok {
					t.Errorf("Accept returned a second connection")
				}
				reset := errors.Is(derr, syscall.ECONNRESET) || errors.Is(werr, syscall.ECONNRESET) ||
					errors.Is(werr, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
				if tc.wantOpen && err != nil {
					t.Errorf("Read() = %v, want what the server wrote", err)
				}
				if !tc.wantOpen && !reset {
					t.Errorf("Read() = %v, want a connection reset", err)
				}
				if n := in.refused.Load(); n != int64(btoi(!tc.wantOpen)) {
					t.Errorf("refused %d connections, want %d", n, btoi(!tc.wantOpen))
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestIDRange(t *testing.T) {
	r, err := newIDRange(1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	take := func() int {
		t.Helper()
		id, err := r.take()
		if err != nil {
			t.Fatalf("take() = %v", err)
		}
		return id
	}
	if a, b, c := take(), take(), take(); a != 1000 || b != 1001 || c != 1002 {
		t.Errorf("take() x3 = %d %d %d, want 1000 1001 1002", a, b, c)
	}
	if id, err := r.take(); !errors.Is(err, ErrNoUID) {
		t.Errorf("take() on a full range = %d, %v, want ErrNoUID", id, err)
	}
	r.put(1001)
	if id := take(); id != 1001 {
		t.Errorf("take() after put(1001) = %d, want 1001", id)
	}
	r.put(1000)
	r.put(1002)
	// In turn: 1002 was freed after 1000 but comes first after 1001.
	if a, b := take(), take(); a != 1002 || b != 1000 {
		t.Errorf("take() x2 = %d %d, want 1002 1000", a, b)
	}
	for _, bad := range [][2]int{{0, 10}, {1, 0}, {maxID, 2}} {
		if _, err := newIDRange(bad[0], bad[1]); err == nil {
			t.Errorf("newIDRange(%d, %d) = nil error", bad[0], bad[1])
		}
	}
}
