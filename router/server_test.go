package router

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerAnswersMalformedRequests drives a real listener with the router's server settings: the
// answers net/http gives before the handler runs (400, 431) and the replay as it goes on the wire.
func TestServerAnswersMalformedRequests(t *testing.T) {
	r := world(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer("", r.public, DefaultServerSettings, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	bigHeader := strings.Repeat("x", DefaultServerSettings.MaxHeaderBytes+4096)
	tests := []struct {
		name string
		raw  string
		want int
	}{
		{"replay", "GET / HTTP/1.1\r\nHost: solo.example.com\r\n\r\n", ReplayStatus},
		{"headers over MaxHeaderBytes", "GET / HTTP/1.1\r\nHost: solo.example.com\r\nX-Big: " + bigHeader + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"garbage request line", "HELLO\r\n\r\n", http.StatusBadRequest},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: solo.example.com\r\nHost: alice.example.com\r\n\r\n", http.StatusBadRequest},
		{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", http.StatusBadRequest},
		{"absolute URI names the host", "GET http://solo.example.com/x HTTP/1.1\r\nHost: solo.example.com\r\n\r\n", ReplayStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprint(conn, tt.raw); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = res.Body.Close() }()
			if res.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.want)
			}
			if tt.want == ReplayStatus {
				if res.Header.Get(HeaderReplay) == "" || res.ContentLength != 0 {
					t.Errorf("replay on the wire: fly-replay %q, Content-Length %d; want the header and an empty body",
						res.Header.Get(HeaderReplay), res.ContentLength)
				}
			}
		})
	}
}

func TestNewServerAppliesSettings(t *testing.T) {
	s := ServerSettings{ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4, MaxHeaderBytes: 5}
	srv := NewServer(":1", http.NotFoundHandler(), s, nil)
	if srv.ReadHeaderTimeout != 1 || srv.ReadTimeout != 2 || srv.WriteTimeout != 3 || srv.IdleTimeout != 4 || srv.MaxHeaderBytes != 5 || srv.Addr != ":1" {
		t.Fatalf("server = %+v, want the settings applied", srv)
	}
	d := DefaultServerSettings
	if d.ReadHeaderTimeout <= 0 || d.ReadTimeout <= 0 || d.WriteTimeout <= 0 || d.IdleTimeout <= 0 || d.MaxHeaderBytes <= 0 {
		t.Fatalf("DefaultServerSettings leaves a limit off: %+v", d)
	}
}
