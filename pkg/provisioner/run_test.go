package provisioner

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func TestHealth(t *testing.T) {
	synced := func() bool { return true }
	syncing := func() bool { return false }
	leaderOK := func(*http.Request) error { return nil }
	leaderLate := func(*http.Request) error { return errors.New("lease not renewed for 30s") }
	tests := []struct {
		name string
		h    *health
		want int
	}{
		{"starting", &health{}, http.StatusServiceUnavailable},
		{"caches syncing", &health{synced: []cache.InformerSynced{synced, syncing}}, http.StatusServiceUnavailable},
		{"caches synced", &health{synced: []cache.InformerSynced{synced, synced}}, http.StatusOK},
		{"standby", &health{waiting: true, leader: leaderOK}, http.StatusOK},
		{"leader, synced", &health{synced: []cache.InformerSynced{synced}, leader: leaderOK}, http.StatusOK},
		{"leader not renewing", &health{synced: []cache.InformerSynced{synced}, leader: leaderLate}, http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz/provisioner", nil))
			if rec.Code != tc.want {
				t.Errorf("status %d (%s), want %d", rec.Code, rec.Body.String(), tc.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	valid := func() Config {
		return Config{DriverName: "csi.stowage.io", Controller: &stubController{}, Scrubber: scrubberFunc(nil),
			Client: nil, Backend: "nfs"}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"no client", func(*Config) {}, false},
		{"nfs", func(c *Config) { c.Client = fakeClient() }, true},
		{"nfs elected without namespace", func(c *Config) { c.Client = fakeClient(); c.LeaderElection = true }, false},
		{"local without node", func(c *Config) { c.Client = fakeClient(); c.Backend = "local" }, false},
		{"local elected", func(c *Config) {
			c.Client, c.Backend, c.NodeName, c.LeaderElection, c.LeaderElectionNamespace = fakeClient(), "local", "n", true, "ns"
		}, false},
		{"local", func(c *Config) { c.Client, c.Backend, c.NodeName = fakeClient(), "local", "n" }, true},
		{"unknown backend", func(c *Config) { c.Client, c.Backend = fakeClient(), "s3" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(&c)
			if err := c.check(); (err == nil) != tc.ok {
				t.Errorf("check() = %v, want ok: %v", err, tc.ok)
			}
		})
	}
}

type scrubberFunc func(string) error

func (f scrubberFunc) ScrubVolume(_ context.Context, id, _ string) error { return f(id) }

func fakeClient() kubernetes.Interface { return fake.NewClientset() }
