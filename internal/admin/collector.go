package admin

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind is the Prometheus type of a Sample.
type Kind int

// The kinds of samples.
const (
	Counter Kind = iota + 1
	Gauge
)

// Sample is one metric value read from a node's status at scrape time.
type Sample struct {
	// Name is the full metric name, e.g. "repld_commits_total".
	Name string
	Help string
	Kind Kind
	// Labels are name/value pairs: Labels[0] names the first label,
	// Labels[1] is its value, and so on.
	Labels []string
	Value  float64
}

// NewCollector returns a prometheus.Collector that calls read at every scrape
// and exposes what it returns. Nodes keep their counters as plain numbers in
// their status; reading them at scrape time keeps the metrics and /status
// consistent and keeps Prometheus out of the node packages.
//
// The collector is unchecked (its Describe sends nothing), because the set
// of labelled series, one per replica, changes at run time. A sample that
// Prometheus rejects (a bad name, an odd label list) is reported as a scrape
// error for that sample only.
func NewCollector(read func() []Sample) prometheus.Collector {
	return collector(read)
}

type collector func() []Sample

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c() {
		ch <- s.metric()
	}
}

func (s Sample) metric() prometheus.Metric {
	if len(s.Labels)%2 != 0 {
		desc := prometheus.NewDesc(s.Name, s.Help, nil, nil)
		return prometheus.NewInvalidMetric(desc, fmt.Errorf("metric %s: odd label list %q", s.Name, s.Labels))
	}
	var names, values []string
	for i := 0; i < len(s.Labels); i += 2 {
		names = append(names, s.Labels[i])
		values = append(values, s.Labels[i+1])
	}
	desc := prometheus.NewDesc(s.Name, s.Help, names, nil)
	vt := prometheus.GaugeValue
	if s.Kind == Counter {
		vt = prometheus.CounterValue
	}
	m, err := prometheus.NewConstMetric(desc, vt, s.Value, values...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}
