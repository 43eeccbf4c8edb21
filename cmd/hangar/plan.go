package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/konfig"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyadapter"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/kubeconfig"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// planOptions are `hangar plan`'s flags; the Fly and naming ones are the manager's, under the
// same names, and must have the manager's values for the plan to be the manager's.
type planOptions struct {
	files         fileList
	kubeconfig    string
	namespace     string
	flyAPIURL     string
	flyTokenFile  string
	rootKeyFile   string
	rootKeySecret string
	controllers   controllers.Options
}

// fileList is a repeatable -f.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

const planHelp = `Usage: hangar plan -f <file|dir|kustomization dir> [-f ...] [flags]

Prints, per UserApp and UserMachine of the files, the Fly calls the manager would make against
the current Fly state, without making any: the manager's own phases run over each object with a
Fly client that reads Fly and records writes, and a Kubernetes client that reads the cluster and
writes nothing. Secret values are never printed, only names and where values come from.

Objects are merged over the live ones of the same name (spec, labels, annotations from the files;
status from the cluster) and checked by the apiserver with a dry run. An object in the cluster but
not in the files is not planned (its deletion is not shown), unless the object in the files carries
a deletionTimestamp. Other kinds are listed as not planned; Secrets of the files are what the plan's
UserApps read.

Exit status: 0 when every object would be taken, 1 when the apiserver, Fly or hangar would refuse
one (or the plan could not be made), 2 for bad flags.

Flags:
`

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o planOptions
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.Var(&o.files, "f", "File, directory of YAML files, or kustomization directory to plan (repeatable)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fs.StringVar(&o.namespace, "namespace", "default", "Namespace of the objects that name none")
	fs.StringVar(&o.flyAPIURL, "fly-api-url", flyapi.DefaultBaseURL, "Fly Machines API URL (as the manager's)")
	fs.StringVar(&o.flyTokenFile, "fly-token-file", "", "File holding the Fly API token (default: the FLY_API_TOKEN environment variable); only reads are made with it")
	fs.StringVar(&o.rootKeyFile, "root-key-file", "", "File holding the installation's root key (the root.key of the root key Secret); default: read --root-key-secret")
	fs.StringVar(&o.rootKeySecret, "root-key-secret", "hangar-system/hangar-root-key", "Secret (namespace/name) holding the root key, read when --root-key-file is not set")
	fs.StringVar(&o.controllers.DefaultOrg, "default-org", "personal", "Fly org of UserApps that do not set spec.org (as the manager's)")
	fs.StringVar(&o.controllers.DefaultRegion, "default-region", "ord", "Fly region of UserMachines that do not set spec.region (as the manager's)")
	fs.StringVar(&o.controllers.AppNamePrefix, "app-name-prefix", "hangar-", "Prefix of derived Fly app names (as the manager's)")
	fs.StringVar(&o.controllers.RouterBaseDomain, "router-base-domain", "", "The router's base domain, for host conflicts (as the manager's)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), planHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if len(o.files) == 0 {
		return fmt.Errorf("%w: no -f: name the files, directories or kustomizations to plan", errUsage)
	}
	if o.flyTokenFile == "" && os.Getenv("FLY_API_TOKEN") == "" {
		return fmt.Errorf("%w: no Fly API token: set --fly-token-file or FLY_API_TOKEN", errUsage)
	}
	if _, _, ok := strings.Cut(o.rootKeySecret, "/"); !ok && o.rootKeyFile == "" {
		return fmt.Errorf("%w: --root-key-secret %q: use namespace/name", errUsage, o.rootKeySecret)
	}

	var objs []*unstructured.Unstructured
	for _, path := range o.files {
		read, err := readManifestPath(path)
		if err != nil {
			return err
		}
		objs = append(objs, read...)
	}

	settings, err := o.settings(ctx)
	if err != nil {
		return err
	}
	plans, err := controllers.Plan(ctx, settings, objs)
	if err != nil {
		return err
	}
	refused := printPlan(stdout, plans)
	if refused > 0 {
		return fmt.Errorf("%d object(s) would be refused", refused)
	}
	return nil
}

// settings connects to the cluster and Fly as the manager would, for reads.
func (o *planOptions) settings(ctx context.Context) (controllers.PlanSettings, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return controllers.PlanSettings{}, err
	}
	if err := flyv1alpha1.AddToScheme(scheme); err != nil {
		return controllers.PlanSettings{}, err
	}
	cfg, err := kubeconfig.Load(o.kubeconfig)
	if err != nil {
		return controllers.PlanSettings{}, fmt.Errorf("finding the cluster: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return controllers.PlanSettings{}, fmt.Errorf("connecting to the cluster: %w", err)
	}
	root, err := o.rootKey(ctx, c)
	if err != nil {
		return controllers.PlanSettings{}, err
	}
	token := flyapi.StaticToken(os.Getenv("FLY_API_TOKEN"))
	if o.flyTokenFile != "" {
		token = flyapi.FileToken(o.flyTokenFile)
	}
	fly, err := flyapi.New(flyapi.Options{BaseURL: o.flyAPIURL, Token: token, UserAgent: "hangar-plan"})
	if err != nil {
		return controllers.PlanSettings{}, err
	}
	return controllers.PlanSettings{Client: c, Fly: flyadapter.New(fly, flyadapter.Options{}), Keys: root,
		Options: o.controllers, Namespace: o.namespace}, nil
}

// rootKey reads the root key from --root-key-file, else from the root key Secret; never creates it.
func (o *planOptions) rootKey(ctx context.Context, c client.Reader) (keys.Root, error) {
	if o.rootKeyFile != "" {
		raw, err := os.ReadFile(o.rootKeyFile)
		if err != nil {
			return keys.Root{}, fmt.Errorf("--root-key-file: %w", err)
		}
		root, err := keys.ParseRoot(raw)
		if err != nil {
			return keys.Root{}, fmt.Errorf("--root-key-file %s: %w", o.rootKeyFile, err)
		}
		return root, nil
	}
	ns, name, _ := strings.Cut(o.rootKeySecret, "/")
	var secret corev1.Secret
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &secret); err != nil {
		return keys.Root{}, fmt.Errorf("reading the root key Secret %s (or pass --root-key-file): %w", o.rootKeySecret, err)
	}
	root, err := keys.ParseRoot(secret.Data[keys.RootKeySecretKey])
	if err != nil {
		return keys.Root{}, fmt.Errorf("root key Secret %s, key %s: %w", o.rootKeySecret, keys.RootKeySecretKey, err)
	}
	return root, nil
}

// readManifestPath reads a file, every YAML and JSON file of a directory, or a kustomization
// directory (built as `kubectl kustomize` would).
func readManifestPath(path string) ([]*unstructured.Unstructured, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", path, err)
	}
	if !info.IsDir() {
		return readManifestFile(path)
	}
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if _, err := os.Stat(filepath.Join(path, name)); err == nil {
			return manifests.ReadKustomization(path)
		}
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", path, err)
	}
	var objs []*unstructured.Unstructured
	for _, e := range entries {
		if e.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(e.Name())) {
			continue
		}
		read, err := readManifestFile(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, err
		}
		objs = append(objs, read...)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("-f %s: no .yaml, .yml or .json file with objects in this directory", path)
	}
	return objs, nil
}

// documentSeparator starts a new YAML document.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// readManifestFile decodes each document of a file, naming the file and the line a document
// starts at in any error.
func readManifestFile(path string) ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", path, err)
	}
	var objs []*unstructured.Unstructured
	start, line := 0, 1
	bounds := append(documentSeparator.FindAllIndex(raw, -1), []int{len(raw), len(raw)})
	for _, b := range bounds {
		doc := raw[start:b[0]]
		docs, err := manifests.Decode(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: the document starting at line %d does not parse: %w", path, line, err)
		}
		for _, obj := range docs {
			if obj.GetAPIVersion() == "" || obj.GetKind() == "" || obj.GetName() == "" {
				return nil, fmt.Errorf("%s: the document starting at line %d is not a Kubernetes object: it needs apiVersion, kind and metadata.name", path, line)
			}
		}
		objs = append(objs, docs...)
		// The next document starts on the line after the separator.
		start = min(b[1]+1, len(raw))
		line = bytes.Count(raw[:start], []byte("\n")) + 1
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no objects in this file", path)
	}
	return objs, nil
}

// printPlan writes one block per object and the summary line, and returns how many objects would
// be refused.
func printPlan(w io.Writer, plans []controllers.ObjectPlan) int {
	count := map[controllers.PlanVerdict]int{}
	for _, p := range plans {
		count[p.Verdict]++
		fmt.Fprintf(w, "%s %s/%s\n", p.Kind, p.Namespace, p.Name)
		switch {
		case p.Verdict == controllers.VerdictNotPlanned:
			fmt.Fprintf(w, "  not planned: %s\n", p.NotPlannedWhy)
		case p.Refusal != nil && p.Refusal.By == "apiserver":
			fmt.Fprintf(w, "  ! refused by the apiserver: %s: %s\n", p.Refusal.Reason, p.Refusal.Message)
		}
		for _, c := range p.Calls {
			fmt.Fprintf(w, "  %s\n", describeCall(c))
		}
		for _, k := range p.KubernetesWrites {
			fmt.Fprintf(w, "  ~ kubernetes: %s\n", k)
		}
		switch {
		case p.Refusal != nil && p.Refusal.By != "apiserver":
			fmt.Fprintf(w, "  ! refused: %s: %s\n", p.Refusal.Reason, p.Refusal.Message)
		case p.Held != "":
			fmt.Fprintf(w, "  = held: %s\n", p.Held)
		case p.Verdict == controllers.VerdictNoChanges:
			fmt.Fprintln(w, "  = no changes")
		}
		if p.WaitReason != "" {
			fmt.Fprintf(w, "  … then waits (%s): %s\n", p.WaitReason, p.WaitMessage)
		}
	}
	fmt.Fprintf(w, "\nPlan: %d to create, %d to update, %d to destroy; %d refused\n",
		count[controllers.VerdictCreate], count[controllers.VerdictUpdate], count[controllers.VerdictDestroy], count[controllers.VerdictRefused])
	return count[controllers.VerdictRefused]
}

// describeCall is one line of a plan: + creates, - destroys, ~ changes.
func describeCall(c controllers.PlannedCall) string {
	sign := "~"
	switch c.Kind {
	case controllers.CallCreateApp, controllers.CallCreateMachine, controllers.CallEnsurePrivateIP:
		sign = "+"
	case controllers.CallDeleteApp, controllers.CallDestroyMachine, controllers.CallReleasePrivateIP:
		sign = "-"
	}
	var what string
	switch {
	case c.Kind == controllers.CallCreateApp || c.Kind == controllers.CallDeleteApp:
		what = fmt.Sprintf("%s %s", c.Kind, c.App)
	case c.Machine == "":
		what = fmt.Sprintf("%s of app %s", c.Kind, c.App)
	case c.Machine == controllers.PlannedMachineID:
		what = fmt.Sprintf("%s in app %s", c.Kind, c.App)
	default:
		what = fmt.Sprintf("%s %s in app %s", c.Kind, c.Machine, c.App)
	}
	if c.Detail != "" {
		what += " (" + c.Detail + ")"
	}
	return sign + " " + what
}
