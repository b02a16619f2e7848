package nfs

import "testing"

func TestNFSSource(t *testing.T) {
	tests := []struct{ server, want string }{
		{"nfs.example.com", "nfs.example.com:/export/x"},
		{"10.0.0.5", "10.0.0.5:/export/x"},
		{"fd00::5", "[fd00::5]:/export/x"},
		{"[fd00::5]", "[fd00::5]:/export/x"},
	}
	for _, tt := range tests {
		if got := Source(tt.server, "/export", "x"); got != tt.want {
			t.Errorf("Source(%q) = %q, want %q", tt.server, got, tt.want)
		}
	}
}
