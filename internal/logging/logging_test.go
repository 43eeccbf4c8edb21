package logging

import (
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestParseLevel(t *testing.T) {
	cases := []struct {
		in      string
		want    zapcore.Level
		wantErr bool
	}{
		{in: "info", want: zapcore.InfoLevel},
		{in: "DEBUG", want: zapcore.DebugLevel},
		{in: "error", want: zapcore.ErrorLevel},
		{in: "2", want: zapcore.Level(-2)},
		{in: "-1", wantErr: true},
		{in: "loud", wantErr: true},
	}
	for _, tc := range cases {
		got, err := parseLevel(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseLevel(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	if _, _, err := New(Options{Level: "info", Format: "xml"}); err == nil {
		t.Fatal("format xml accepted")
	}
	log, flush, err := New(Options{Level: "info", Format: "console"})
	if err != nil {
		t.Fatal(err)
	}
	defer flush()
	if !log.Enabled() {
		t.Fatal("info logger not enabled")
	}
}
