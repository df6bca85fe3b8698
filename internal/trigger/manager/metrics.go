package manager

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	lagBytesDesc = prometheus.NewDesc("gust_trigger_lag_bytes",
		"WAL a PostgreSQL trigger's replication slot holds on its database (not yet confirmed).", []string{"trigger"}, nil)
	lagSecondsDesc = prometheus.NewDesc("gust_trigger_lag_seconds",
		"Age of the oldest change a PostgreSQL trigger has not confirmed yet.", []string{"trigger"}, nil)
	deliveredDesc = prometheus.NewDesc("gust_trigger_delivered_total",
		"Events a trigger handed to its function on this node.", []string{"trigger", "kind"}, nil)
	deadDesc = prometheus.NewDesc("gust_trigger_dead_lettered_total",
		"Events a trigger sent to the dead letters on this node.", []string{"trigger", "kind"}, nil)
)

// Collector returns the triggers' metrics for a Prometheus registry.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagBytesDesc
	ch <- lagSecondsDesc
	ch <- deliveredDesc
	ch <- deadDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	runs := make([]*run, 0, len(c.m.running))
	for _, r := range c.m.running {
		runs = append(runs, r)
	}
	c.m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, r := range runs {
		kind := r.t.Kind()
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(r.st.delivered.Load()), r.t.Name, kind)
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.CounterValue, float64(r.st.deadLettered.Load()), r.t.Name, kind)
		r.st.mu.Lock()
		lag := r.st.lag
		r.st.mu.Unlock()
		if lag == nil {
			continue
		}
		if b, age, err := lag(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(lagBytesDesc, prometheus.GaugeValue, float64(b), r.t.Name)
			ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, age.Seconds(), r.t.Name)
		}
	}
}
