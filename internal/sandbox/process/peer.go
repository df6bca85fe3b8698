//go:build linux

package process

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// The Runtime API listens on loopback in the host's network namespace,
// which every instance shares. What keeps one instance from another's API
// is the uid: every instance runs as a uid of its own, and an instance's
// listener takes only connections whose client socket belongs to that
// uid. TCP has no SO_PEERCRED, but the kernel knows each socket's uid
// (that of the process that created it) and tells it two ways: a
// sock_diag netlink request for one socket by its addresses, a hash
// lookup of some microseconds; and the tables /proc/net/tcp and tcp6,
// which list every socket but cost milliseconds to read (the kernel walks
// its whole hash table), the fallback where sock_diag is missing.

// procNetTCP are the kernel's socket tables, read by procSocketUID.
var procNetTCP = [...]struct {
	path string
	v6   bool
}{{"/proc/net/tcp", false}, {"/proc/net/tcp6", true}}

// errNoPeer: the kernel has no (live) client socket for a connection:
// the client is gone.
var errNoPeer = errors.New("client socket not found")

// peerUID returns the uid that owns the client end of c, a TCP connection
// accepted on a listener of this network namespace: the socket whose
// local address is c's remote address and whose remote address is c's
// local address. It fails with errNoPeer when there is no such socket
// (any more).
func peerUID(c net.Conn) (int, error) {
	local, ok := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok || !ok2 {
		return -1, fmt.Errorf("not a TCP connection: %s", c.LocalAddr().Network())
	}
	uid, err := diagSocketUID(remote, local)
	if err == nil || errors.Is(err, errNoPeer) {
		return uid, err
	}
	return procSocketUID(remote, local)
}

// Netlink sock_diag, as linux/sock_diag.h and linux/inet_diag.h define it.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	nlmsgHdrLen      = 16
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	inetDiagUIDOff   = 64 // of idiag_uid in struct inet_diag_msg
)

// diagSocketUID asks the kernel, by sock_diag, for the uid of the TCP
// socket with the given local and remote addresses. The lookup is exact
// (no NLM_F_DUMP): a hash lookup like a packet's. It fails with errNoPeer
// when there is no such socket, or only a socket in TIME_WAIT (held by no
// process) or a listener (what the kernel finds for a packet to a
// listening port when no connection matches) is found.
func diagSocketUID(local, remote *net.TCPAddr) (int, error) {
	family, addrLen := syscall.AF_INET, 4
	if local.IP.To4() == nil || remote.IP.To4() == nil {
		family, addrLen = syscall.AF_INET6, 16
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return -1, fmt.Errorf("sock_diag: %w", err)
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return -1, fmt.Errorf("sock_diag: %w", err)
	}

	var req [nlmsgHdrLen + inetDiagReqLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // seq
	r := req[nlmsgHdrLen:]
	r[0], r[1] = byte(family), syscall.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]                     // struct inet_diag_sockid
	binary.BigEndian.PutUint16(id[0:], uint16(local.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(remote.Port))
	if addrLen == 4 {
		copy(id[4:], local.IP.To4())
		copy(id[20:], remote.IP.To4())
	} else {
		copy(id[4:], local.IP.To16())
		copy(id[20:], remote.IP.To16())
	}
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := syscall.Sendto(fd, req[:], 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return -1, fmt.Errorf("sock_diag: %w", err)
	}

	var resp [4096]byte
	n, _, err := syscall.Recvfrom(fd, resp[:], 0)
	if err != nil {
		return -1, fmt.Errorf("sock_diag: %w", err)
	}
	msg := resp[:n]
	if len(msg) < nlmsgHdrLen {
		return -1, fmt.Errorf("sock_diag: short answer of %d bytes", n)
	}
	switch ne.Uint16(msg[4:]) {
	case syscall.NLMSG_ERROR:
		if len(msg) < nlmsgHdrLen+4 {
			return -1, fmt.Errorf("sock_diag: short error of %d bytes", n)
		}
		errno := syscall.Errno(-int32(ne.Uint32(msg[nlmsgHdrLen:])))
		if errno == syscall.ENOENT {
			return -1, errNoPeer
		}
		return -1, fmt.Errorf("sock_diag: %w", errno)
	case sockDiagByFamily:
		if len(msg) < nlmsgHdrLen+inetDiagMsgLen {
			return -1, fmt.Errorf("sock_diag: short answer of %d bytes", n)
		}
		m := msg[nlmsgHdrLen:]
		if st := m[1]; st == tcpTimeWaitState || st == tcpListenState {
			return -1, errNoPeer
		}
		return int(ne.Uint32(m[inetDiagUIDOff:])), nil
	}
	return -1, fmt.Errorf("sock_diag: answer of type %d", ne.Uint16(msg[4:]))
}

// procSocketUID finds the uid of the TCP socket with the given local and
// remote addresses in /proc/net/tcp, or tcp6 for a client on an IPv6
// socket (a v4-mapped address).
func procSocketUID(local, remote *net.TCPAddr) (int, error) {
	var buf bytes.Buffer
	// A table larger than one read can skip a row when sockets come and
	// go between reads; the client socket stays, so a second pass finds
	// it.
	for range 2 {
		for _, t := range procNetTCP {
			if !t.v6 && (local.IP.To4() == nil || remote.IP.To4() == nil) {
				continue
			}
			key := procSocketKey(local, remote, t.v6)
			buf.Reset()
			if err := readProcFile(&buf, t.path); err != nil {
				if t.v6 && errors.Is(err, os.ErrNotExist) {
					continue // no IPv6 on this host
				}
				return -1, err
			}
			if uid, ok := findSocketUID(buf.Bytes(), key); ok {
				return uid, nil
			}
		}
	}
	return -1, errNoPeer
}

func readProcFile(buf *bytes.Buffer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf.Grow(64 << 10) // fewer reads: fewer chances to skip a row
	_, err = buf.ReadFrom(f)
	return err
}

// procSocketKey is how a /proc/net/tcp{,6} row starts after its slot
// number: "LOCAL:PORT REMOTE:PORT ". The kernel prints each 32-bit word of
// an address as the hexadecimal number it is in host byte order.
func procSocketKey(local, remote *net.TCPAddr, v6 bool) []byte {
	key := make([]byte, 0, 2*(32+1+4+1))
	for _, a := range []*net.TCPAddr{local, remote} {
		ip := a.IP.To4()
		if v6 {
			ip = a.IP.To16()
		}
		for i := 0; i+4 <= len(ip); i += 4 {
			key = fmt.Appendf(key, "%08X", binary.NativeEndian.Uint32(ip[i:]))
		}
		key = fmt.Appendf(key, ":%04X ", a.Port)
	}
	return key
}

// TCP states (as /proc/net/tcp prints them).
const (
	tcpTimeWaitState = 6
	tcpListenState   = 10
	tcpTimeWait      = "06"
	tcpListen        = "0A"
)

// findSocketUID finds the row of table (the text of /proc/net/tcp or
// tcp6) whose addresses are key and returns its uid. Rows for sockets
// in TIME_WAIT (the kernel shows them as uid 0 and no process holds them)
// or LISTEN are skipped.
func findSocketUID(table, key []byte) (int, bool) {
	for len(table) > 0 {
		i := bytes.Index(table, key)
		if i < 0 {
			return -1, false
		}
		start := bytes.LastIndexByte(table[:i], '\n') + 1
		var line []byte
		if end := bytes.IndexByte(table[i:], '\n'); end < 0 {
			line, table = table[start:], nil
		} else {
			line, table = table[start:i+end], table[i+end+1:]
		}
		// "sl: local remote st tx_queue:rx_queue tr:tm->when retrnsmt uid ..."
		_, row, ok := bytes.Cut(line, []byte(": "))
		if !ok || !bytes.HasPrefix(row, key) {
			continue // the key matched elsewhere in the row
		}
		f := bytes.Fields(row)
		if len(f) < 7 {
			continue
		}
		if st := string(f[2]); st == tcpTimeWait || st == tcpListen {
			continue
		}
		uid, err := strconv.Atoi(string(f[6]))
		if err != nil || uid < 0 {
			continue
		}
		return uid, true
	}
	return -1, false
}

// checkPeerUID tries the lookups of peerUID on a loopback connection of
// the node's own, which must be found as the node's euid, and says which
// works.
func checkPeerUID() (how string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		return "", err
	}
	defer s.Close()
	local, remote := s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)
	check := func(uid int, err error) error {
		if err == nil && uid != os.Geteuid() {
			err = fmt.Errorf("a socket of the node (uid %d) is listed as uid %d", os.Geteuid(), uid)
		}
		return err
	}
	diagErr := check(diagSocketUID(local, remote))
	if diagErr == nil {
		return "sock_diag", nil
	}
	if err := check(procSocketUID(local, remote)); err != nil {
		return "", fmt.Errorf("%w; %w", diagErr, err)
	}
	return fmt.Sprintf("/proc/net/tcp, milliseconds per connection: %v", diagErr), nil
}
