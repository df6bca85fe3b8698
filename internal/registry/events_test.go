package registry

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseDestination(t *testing.T) {
	tests := []struct {
		arn     string
		want    Destination
		wantErr string
	}{
		{arn: "arn:aws:lambda:us-east-1:000000000000:function:sink",
			want: Destination{Kind: DestinationFunction, Name: "sink"}},
		{arn: "arn:aws:lambda:eu-west-1:123456789012:function:sink:live",
			want: Destination{Kind: DestinationFunction, Name: "sink", Qualifier: "live"}},
		{arn: "arn:aws:lambda:us-east-1:000000000000:function:sink:$LATEST",
			want: Destination{Kind: DestinationFunction, Name: "sink", Qualifier: Latest}},
		{arn: "arn:aws:sqs:us-east-1:000000000000:failures",
			want: Destination{Kind: DestinationQueue, Name: "failures"}},
		{arn: "arn:aws:sqs:us-east-1:000000000000:orders_dead-1",
			want: Destination{Kind: DestinationQueue, Name: "orders_dead-1"}},
		{arn: "arn:aws:sqs:us-east-1:000000000000:jobs.fifo", wantErr: "FIFO"},
		{arn: "arn:aws:sqs:us-east-1:000000000000:" + strings.Repeat("q", 81), wantErr: "1 to 80"},
		{arn: "arn:aws:sns:us-east-1:000000000000:topic", wantErr: "sns ARN"},
		{arn: "arn:aws:s3:::bucket", wantErr: "s3 ARN"},
		{arn: "arn:aws:lambda:us-east-1:000000000000:layer:x", wantErr: "not a function ARN"},
		{arn: "sink", wantErr: "not an ARN"},
		{arn: "", wantErr: "not an ARN"},
	}
	for _, tc := range tests {
		t.Run(tc.arn, func(t *testing.T) {
			got, err := ParseDestination("Destination", tc.arn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDestination(%q) error = %v, want one mentioning %q", tc.arn, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDestination(%q): %v", tc.arn, err)
			}
			tc.want.ARN = tc.arn
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseDestination(%q) mismatch (-want +got):\n%s", tc.arn, diff)
			}
		})
	}
}

func TestEventInvokeValidation(t *testing.T) {
	n := func(v int) *int { return &v }
	const (
		sink  = "arn:aws:lambda:us-east-1:000000000000:function:sink"
		self  = "arn:aws:lambda:us-east-1:000000000000:function:f:live"
		queue = "arn:aws:sqs:us-east-1:000000000000:failures"
	)
	tests := []struct {
		name    string
		dlq     string
		cfg     map[string]*EventInvokeConfig
		wantErr string // substring naming the problem; empty: valid
	}{
		{name: "none"},
		{name: "defaults", cfg: map[string]*EventInvokeConfig{Latest: {}}},
		{name: "full", dlq: queue, cfg: map[string]*EventInvokeConfig{
			Latest: {MaximumRetryAttempts: n(0), MaximumEventAgeSec: n(60), OnSuccess: sink, OnFailure: queue},
			"live": {MaximumRetryAttempts: n(2), MaximumEventAgeSec: n(21600)},
			"3":    {OnFailure: sink},
		}},
		{name: "retries above 2", cfg: map[string]*EventInvokeConfig{Latest: {MaximumRetryAttempts: n(3)}}, wantErr: "Value '3' at 'maximumRetryAttempts'"},
		{name: "negative retries", cfg: map[string]*EventInvokeConfig{Latest: {MaximumRetryAttempts: n(-1)}}, wantErr: "maximumRetryAttempts"},
		{name: "age below 60", cfg: map[string]*EventInvokeConfig{Latest: {MaximumEventAgeSec: n(59)}}, wantErr: "Value '59' at 'maximumEventAgeInSeconds'"},
		{name: "age above 6h", cfg: map[string]*EventInvokeConfig{Latest: {MaximumEventAgeSec: n(21601)}}, wantErr: "between 60 and 21600"},
		{name: "bad on-success", cfg: map[string]*EventInvokeConfig{Latest: {OnSuccess: "arn:aws:sns:us-east-1:000000000000:t"}}, wantErr: "DestinationConfig.OnSuccess.Destination"},
		{name: "bad on-failure", cfg: map[string]*EventInvokeConfig{Latest: {OnFailure: "nope"}}, wantErr: "DestinationConfig.OnFailure.Destination"},
		{name: "self destination", cfg: map[string]*EventInvokeConfig{Latest: {OnFailure: self}}, wantErr: "its own destination"},
		{name: "bad qualifier", cfg: map[string]*EventInvokeConfig{"a.b": {}}, wantErr: "qualifier"},
		{name: "nil settings", cfg: map[string]*EventInvokeConfig{Latest: nil}, wantErr: "empty"},
		{name: "bad dead-letter target", dlq: "arn:aws:sns:us-east-1:000000000000:t", wantErr: "DeadLetterConfig.TargetArn"},
		{name: "self dead-letter target", dlq: "arn:aws:lambda:us-east-1:000000000000:function:f", wantErr: "its own destination"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &Function{Name: "f", Runtime: "wasm", DeadLetterTarget: tc.dlq, EventInvoke: tc.cfg}
			err := Normalize(f)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Normalize: unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Normalize error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestEventInvokeDefaults(t *testing.T) {
	n := func(v int) *int { return &v }
	var none *EventInvokeConfig
	if got := none.Retries(); got != 2 {
		t.Errorf("nil.Retries() = %d, want 2", got)
	}
	if got := none.MaxAge(); got != 6*time.Hour {
		t.Errorf("nil.MaxAge() = %v, want 6h", got)
	}
	c := &EventInvokeConfig{MaximumRetryAttempts: n(0), MaximumEventAgeSec: n(90)}
	if got := c.Retries(); got != 0 {
		t.Errorf("Retries() = %d, want 0", got)
	}
	if got := c.MaxAge(); got != 90*time.Second {
		t.Errorf("MaxAge() = %v, want 90s", got)
	}
	f := &Function{Name: "f", EventInvoke: map[string]*EventInvokeConfig{Latest: c}}
	if got := f.EventInvokeFor(""); got != c {
		t.Errorf("EventInvokeFor(\"\") = %v, want $LATEST's", got)
	}
	if got := f.EventInvokeFor("live"); got != nil {
		t.Errorf("EventInvokeFor(live) = %v, want nil", got)
	}
	// Clone is deep.
	cl := f.Clone()
	*cl.EventInvoke[Latest].MaximumRetryAttempts = 2
	if *c.MaximumRetryAttempts != 0 {
		t.Errorf("Clone shares EventInvoke with the original")
	}
}

func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"arn:aws:lambda:us-east-1:000000000000:function:sink:live", "arn:aws:sqs:us-east-1:000000000000:q",
		"arn:aws:sns:us-east-1:000000000000:t", "arn:aws:sqs:::", "sink", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arn string) {
		d, err := ParseDestination("Destination", arn)
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("ParseDestination(%q) error %T, want *ValidationError", arn, err)
			}
			return
		}
		switch d.Kind {
		case DestinationFunction:
			if ValidateName(d.Name) != nil || (d.Qualifier != "" && ValidateQualifier(d.Qualifier) != nil && d.Qualifier != Latest) {
				t.Fatalf("ParseDestination(%q) = %+v: invalid function name or qualifier accepted", arn, d)
			}
		case DestinationQueue:
			if !queueNameRE.MatchString(d.Name) {
				t.Fatalf("ParseDestination(%q) = %+v: invalid queue name accepted", arn, d)
			}
		default:
			t.Fatalf("ParseDestination(%q) kind %v", arn, d.Kind)
		}
		if d.ARN != arn {
			t.Fatalf("ParseDestination(%q).ARN = %q", arn, d.ARN)
		}
	})
}
