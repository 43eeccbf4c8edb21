package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

func validFlyRouter() *v1.FlyRouter {
	return &v1.FlyRouter{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("router-%d", counter.Add(1))},
		Spec: v1.FlyRouterSpec{
			Regions:    []v1.RouterRegion{{Region: "ord", Machines: 2}, {Region: "ams"}},
			Image:      "registry.fly.io/hangar-router:v1",
			BaseDomain: "apps.example.com",
			APIServer:  v1.RouterAPIServer{URL: "https://k8s.example.com:6443"},
		},
	}
}

// createRouter creates a cluster-scoped FlyRouter and deletes it after the test.
func createRouter(t *testing.T, fr *v1.FlyRouter) error {
	t.Helper()
	err := env.Client.Create(context.Background(), fr)
	if err == nil {
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), fr) })
	}
	return err
}

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func TestFlyRouterAdmissionOnCreate(t *testing.T) {
	cases := []admissionCase[*v1.FlyRouter]{
		{name: "valid", mutate: func(*v1.FlyRouter) {}},
		{name: "no regions", mutate: func(r *v1.FlyRouter) { r.Spec.Regions = nil }, wantErr: "spec.regions"},
		{name: "region repeated", mutate: func(r *v1.FlyRouter) { r.Spec.Regions = append(r.Spec.Regions, v1.RouterRegion{Region: "ord"}) }, wantErr: "Duplicate value"},
		{name: "region code upper case", mutate: func(r *v1.FlyRouter) { r.Spec.Regions[0].Region = "ORD" }, wantErr: "region must be a Fly region code"},
		{name: "zero machines", mutate: func(r *v1.FlyRouter) { r.Spec.Regions[0].Machines = -1 }, wantErr: "should be greater than or equal to 1"},
		{name: "no image", mutate: func(r *v1.FlyRouter) { r.Spec.Image = "" }, wantErr: "spec.image"},
		{name: "image with a space", mutate: func(r *v1.FlyRouter) { r.Spec.Image = "router v1" }, wantErr: "spec.image must be an image reference"},
		{name: "appName upper case", mutate: func(r *v1.FlyRouter) { r.Spec.AppName = "Router" }, wantErr: "spec.appName must use only lowercase letters"},
		{name: "org invalid", mutate: func(r *v1.FlyRouter) { r.Spec.Org = "My_Org" }, wantErr: "spec.org must be a Fly organization slug"},
		{name: "baseDomain with trailing dot", mutate: func(r *v1.FlyRouter) { r.Spec.BaseDomain = "apps.example.com." }, wantErr: "spec.baseDomain must be a lower-case DNS name"},
		{name: "apiServer over http", mutate: func(r *v1.FlyRouter) { r.Spec.APIServer.URL = "http://k8s.example.com" }, wantErr: "spec.apiServer.url must be an https URL"},
		{name: "apiServer not a URL", mutate: func(r *v1.FlyRouter) { r.Spec.APIServer.URL = "k8s.example.com:6443" }, wantErr: "spec.apiServer.url must be an https URL"},
		{name: "caData PEM", mutate: func(r *v1.FlyRouter) { r.Spec.APIServer.CAData = testCA }},
		{name: "caData not PEM", mutate: func(r *v1.FlyRouter) { r.Spec.APIServer.CAData = "MIIB" }, wantErr: "spec.apiServer.caData must be PEM"},
		{name: "caData and caConfigMapRef", mutate: func(r *v1.FlyRouter) {
			r.Spec.APIServer.CAData = testCA
			r.Spec.APIServer.CAConfigMapRef = &v1.ConfigMapKeySelector{Name: "kube-root-ca.crt", Key: "ca.crt"}
		}, wantErr: "spec.apiServer takes caData or caConfigMapRef, not both"},
		{name: "tokenLifetime 10m", mutate: func(r *v1.FlyRouter) { r.Spec.TokenLifetime = &metav1.Duration{Duration: 10 * time.Minute} }},
		{name: "tokenLifetime below the apiserver's minimum", mutate: func(r *v1.FlyRouter) { r.Spec.TokenLifetime = &metav1.Duration{Duration: 5 * time.Minute} },
			wantErr: "spec.tokenLifetime must be between 10m"},
		{name: "tokenLifetime too long", mutate: func(r *v1.FlyRouter) { r.Spec.TokenLifetime = &metav1.Duration{Duration: 72 * time.Hour} },
			wantErr: "spec.tokenLifetime must be between 10m"},
		{name: "serviceAccountName invalid", mutate: func(r *v1.FlyRouter) { r.Spec.ServiceAccountName = "Router_SA" }, wantErr: "spec.serviceAccountName must be the name of a ServiceAccount"},
		{name: "publicTokens maxTTL zero", mutate: func(r *v1.FlyRouter) {
			r.Spec.PublicTokens = &v1.RouterPublicTokens{KeySecretRef: v1.SecretKeySelector{Name: "k", Key: "key"}, MaxTTL: &metav1.Duration{}}
		}, wantErr: "spec.publicTokens.maxTTL must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fr := validFlyRouter()
			tc.mutate(fr)
			checkAdmission(t, createRouter(t, fr), tc.wantErr)
		})
	}
}

func TestFlyRouterDefaults(t *testing.T) {
	fr := validFlyRouter()
	if err := createRouter(t, fr); err != nil {
		t.Fatal(err)
	}
	if fr.Spec.ServiceAccountName != v1.DefaultRouterServiceAccount || fr.Spec.TokenLifetime == nil ||
		fr.Spec.TokenLifetime.Duration != v1.DefaultRouterTokenLifetime || fr.Spec.Regions[1].Machines != 1 {
		t.Errorf("defaults: serviceAccountName %q, tokenLifetime %v, ams machines %d", fr.Spec.ServiceAccountName, fr.Spec.TokenLifetime, fr.Spec.Regions[1].Machines)
	}
}

func TestFlyRouterAdmissionOnUpdate(t *testing.T) {
	cases := []updateCase[*v1.FlyRouter]{
		{name: "image changes", update: func(r *v1.FlyRouter) { r.Spec.Image = "registry.fly.io/hangar-router:v2" }},
		{name: "regions change", update: func(r *v1.FlyRouter) { r.Spec.Regions = append(r.Spec.Regions, v1.RouterRegion{Region: "fra"}) }},
		{name: "appName changes", initial: func(r *v1.FlyRouter) { r.Spec.AppName = "router-a" },
			update: func(r *v1.FlyRouter) { r.Spec.AppName = "router-b" }, wantErr: "spec.appName is immutable"},
		{name: "appName added", update: func(r *v1.FlyRouter) { r.Spec.AppName = "router-b" }, wantErr: "spec.appName can only be chosen when the FlyRouter is created"},
		{name: "org changes", initial: func(r *v1.FlyRouter) { r.Spec.Org = "personal" },
			update: func(r *v1.FlyRouter) { r.Spec.Org = "other" }, wantErr: "spec.org is immutable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fr := validFlyRouter()
			if tc.initial != nil {
				tc.initial(fr)
			}
			if err := createRouter(t, fr); err != nil {
				t.Fatalf("creating the initial object: %v", err)
			}
			tc.update(fr)
			checkAdmission(t, env.Client.Update(ctx, fr), tc.wantErr)
		})
	}
}
