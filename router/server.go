package router

import (
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// ServerSettings are the net/http server limits of the public and management listeners. The
// router reads no more than headers and, for chunked requests, at most MaxBodyBytes of body, so the
// timeouts can be short.
type ServerSettings struct {
	// ReadHeaderTimeout bounds how long a client may take to send its headers (slowloris).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the answer.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections left idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; net/http answers 431 beyond it.
	MaxHeaderBytes int
}

// DefaultServerSettings are the settings of a Router's listeners.
var DefaultServerSettings = ServerSettings{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       120 * time.Second,
	MaxHeaderBytes:    32 << 10,
}

// NewServer returns an http.Server with s applied. errorLog receives net/http's own complaints
// (TLS, malformed requests); nil uses the standard logger.
func NewServer(addr string, h http.Handler, s ServerSettings, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// logWriter turns net/http's log lines (TLS and protocol errors) into structured log entries.
type logWriter struct{ logr.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
