package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// loadResult is what one load run measured.
type loadResult struct {
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50us"`
	P99us      float64 `json:"p99us"`
	MaxUs      float64 `json:"maxUs"`
	StatusSeen map[int]int
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// closedLoop runs conns workers, each sending GET url back to back over its
// own keep-alive connection, for d (or until maxReq requests in total when
// maxReq > 0).
func closedLoop(ctx context.Context, url string, conns int, d time.Duration, maxReq int) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	res := loadResult{StatusSeen: map[int]int{}}
	var wg sync.WaitGroup
	var budget chan struct{}
	if maxReq > 0 {
		budget = make(chan struct{}, maxReq)
		for i := 0; i < maxReq; i++ {
			budget <- struct{}{}
		}
		close(budget)
	}
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			errs := 0
			status := map[int]int{}
			for ctx.Err() == nil {
				if budget != nil {
					if _, ok := <-budget; !ok {
						break
					}
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status[resp.StatusCode]++
				if resp.StatusCode != 200 {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			res.Errors += errs
			for k, v := range status {
				res.StatusSeen[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Requests = len(all)
	res.Seconds = el.Seconds()
	res.RPS = float64(len(all)) / el.Seconds()
	res.P50us = us(percentile(all, 0.50))
	res.P99us = us(percentile(all, 0.99))
	if len(all) > 0 {
		res.MaxUs = us(all[len(all)-1])
	}
	return res
}

func (r loadResult) String() string {
	return fmt.Sprintf("%.0f req/s, p50 %.0f µs, p99 %.0f µs, %d errors", r.RPS, r.P50us, r.P99us, r.Errors)
}
