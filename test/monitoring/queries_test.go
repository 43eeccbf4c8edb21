package monitoring_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// promql parses expressions as Prometheus does by default (no experimental functions).
var promql = parser.NewParser(parser.Options{})

// query is one PromQL expression of an alert or a dashboard panel, and where it is.
type query struct {
	where string
	expr  string
}

// alertRules reads config/prometheus/alerts.yaml, checks its groups with Prometheus's own rule file
// parser (names, durations, expressions, annotation templates) and returns its expressions.
func alertRules(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Kind != "PrometheusRule" {
		t.Fatalf("alerts.yaml holds a %q, want a PrometheusRule", rule.Kind)
	}
	// A PrometheusRule's spec is a Prometheus rule file: {groups: [...]}.
	groupsYAML, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(groupsYAML, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yaml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	var out []query
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			out = append(out, query{where: "alert " + r.Alert, expr: r.Expr})
			for _, key := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, key)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("alerts.yaml holds no rule")
	}
	return out
}

// grafanaVariables stand in for the variables Grafana substitutes before it sends a query.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// dashboardQueries reads config/grafana/hangar-dashboard.json and returns every panel's queries.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "grafana", "hangar-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var dash struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("hangar-dashboard.json: %v", err)
	}
	var out []query
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			out = append(out, query{where: "panel " + p.Title, expr: grafanaVariables.Replace(target.Expr)})
		}
	}
	if dash.UID == "" || len(out) == 0 {
		t.Fatalf("hangar-dashboard.json: uid %q, %d queries", dash.UID, len(out))
	}
	return out
}

// metricNames parses q and returns the metric names its selectors read, from the PromQL syntax
// tree. A selector without a metric name is an error: every query names what it reads.
func metricNames(t *testing.T, q query) []string {
	t.Helper()
	expr, err := promql.ParseExpr(q.expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", q.where, q.expr, err)
		return nil
	}
	var names []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%s: selector %s names no metric", q.where, vs)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("%s: %q reads no metric", q.where, q.expr)
	}
	return names
}

// TestQueriesParse parses the alerts with Prometheus's rule file parser and every alert and panel
// expression with its PromQL parser, without running anything.
func TestQueriesParse(t *testing.T) {
	queries := append(alertRules(t), dashboardQueries(t)...)
	var all []string
	for _, q := range queries {
		all = append(all, metricNames(t, q)...)
	}
	for _, want := range []string{"hangar_objects", "hangar_build_info", "hangar_fly_api_rate_limited_total", "hangar_router_requests_total"} {
		if !slices.Contains(all, want) {
			t.Errorf("no alert or panel reads %s", want)
		}
	}
}
