package meter

import (
	"net/http"
	"sync"

	"github.com/gustfaas/gust/internal/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatsSource reports the engine's instances at scrape time.
type StatsSource interface {
	Stats() engine.Stats
}

// Metrics is the node's Prometheus registry: per-function invocation
// counters and latency histograms fed by records, and instance gauges read
// from the engine at scrape time.
type Metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	errors      *prometheus.CounterVec
	throttles   *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	coldStart   *prometheus.HistogramVec
	queueWait   *prometheus.HistogramVec

	per sync.Map // function name -> *fnMetrics, cached label handles
}

type fnMetrics struct {
	ok, fnErr, timeout, throttled prometheus.Counter
	errs, throttles               prometheus.Counter
	duration, cold, wait          prometheus.Observer
}

// NewMetrics builds the registry; stats may be nil.
func NewMetrics(stats StatsSource) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gust_invocations_total", Help: "Invocations by function and outcome (success, function_error, timeout, throttled).",
		}, []string{"function", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gust_errors_total", Help: "Invocations that ended in a function error or a timeout.",
		}, []string{"function"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gust_throttles_total", Help: "Requests refused with 429 without running.",
		}, []string{"function"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gust_invocation_duration_seconds", Help: "Time an invocation ran in its instance.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
		}, []string{"function"}),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gust_cold_start_seconds", Help: "Time to start an instance (cold starts only).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
		}, []string{"function"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gust_queue_wait_seconds", Help: "Time from a request's arrival to holding an instance.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 3, 14),
		}, []string{"function"}),
	}
	m.reg.MustRegister(m.invocations, m.errors, m.throttles, m.duration, m.coldStart, m.queueWait,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if stats != nil {
		m.reg.MustRegister(&instanceCollector{stats: stats})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the underlying registry (for tests and extensions).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) handles(fn string) *fnMetrics {
	if h, ok := m.per.Load(fn); ok {
		return h.(*fnMetrics)
	}
	h := &fnMetrics{
		ok:        m.invocations.WithLabelValues(fn, string(engine.Success)),
		fnErr:     m.invocations.WithLabelValues(fn, string(engine.FunctionError)),
		timeout:   m.invocations.WithLabelValues(fn, string(engine.Timeout)),
		throttled: m.invocations.WithLabelValues(fn, string(engine.Throttled)),
		errs:      m.errors.WithLabelValues(fn),
		throttles: m.throttles.WithLabelValues(fn),
		duration:  m.duration.WithLabelValues(fn),
		cold:      m.coldStart.WithLabelValues(fn),
		wait:      m.queueWait.WithLabelValues(fn),
	}
	got, _ := m.per.LoadOrStore(fn, h)
	return got.(*fnMetrics)
}

func (m *Metrics) observe(r *engine.Record) {
	h := m.handles(r.Function)
	switch r.Outcome {
	case engine.Success:
		h.ok.Inc()
	case engine.FunctionError:
		h.fnErr.Inc()
		h.errs.Inc()
	case engine.Timeout:
		h.timeout.Inc()
		h.errs.Inc()
	case engine.Throttled:
		h.throttled.Inc()
		h.throttles.Inc()
		return
	}
	h.duration.Observe(r.Duration.Seconds())
	h.wait.Observe(r.QueueWait.Seconds())
	if r.Cold {
		h.cold.Observe(r.InitDuration.Seconds())
	}
}

// instanceCollector reads instance counts from the engine at scrape time.
type instanceCollector struct{ stats StatsSource }

var (
	instancesDesc = prometheus.NewDesc("gust_instances", "Instances by function and state (idle, busy, starting).", []string{"function", "state"}, nil)
	waitingDesc   = prometheus.NewDesc("gust_waiting_requests", "Requests waiting for an instance.", []string{"function"}, nil)
	budgetDesc    = prometheus.NewDesc("gust_memory_budget_bytes", "The node's memory budget for instances.", nil, nil)
	reservedDesc  = prometheus.NewDesc("gust_memory_reserved_bytes", "Memory reserved by instances.", nil, nil)
)

func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- instancesDesc
	ch <- waitingDesc
	ch <- budgetDesc
	ch <- reservedDesc
}

func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats.Stats()
	for _, p := range st.Pools {
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(p.Idle), p.Function, "idle")
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(p.Busy), p.Function, "busy")
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(p.Starting), p.Function, "starting")
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(p.Waiting), p.Function)
	}
	ch <- prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(st.BudgetMB)*(1<<20))
	ch <- prometheus.MustNewConstMetric(reservedDesc, prometheus.GaugeValue, float64(st.UsedMB)*(1<<20))
}
