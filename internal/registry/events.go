package registry

import (
	"fmt"
	"regexp"
	"time"
)

// Bounds of the asynchronous invocation settings, as on Lambda.
const (
	DefaultRetryAttempts = 2
	MaxRetryAttempts     = 2
	MinEventAgeSec       = 60
	MaxEventAgeSec       = 6 * 3600
	DefaultEventAgeSec   = MaxEventAgeSec
	MaxQueueNameLen      = 80
)

// EventInvokeConfig is how asynchronous invocations of one qualifier of a
// function are retried and where their results go (Lambda's
// FunctionEventInvokeConfig). A nil field means Lambda's default.
type EventInvokeConfig struct {
	// MaximumRetryAttempts is how many times a function error or timeout
	// is retried (0-2; default 2).
	MaximumRetryAttempts *int `json:"maximumRetryAttempts,omitempty"`
	// MaximumEventAgeSec is how long an event is kept trying through
	// throttles and node errors (60-21600 s; default 21600).
	MaximumEventAgeSec *int `json:"maximumEventAgeSec,omitempty"`
	// OnSuccess and OnFailure are destination ARNs (see ParseDestination);
	// empty means none.
	OnSuccess    string    `json:"onSuccess,omitempty"`
	OnFailure    string    `json:"onFailure,omitempty"`
	LastModified time.Time `json:"lastModified"`
}

// Clone returns a deep copy.
func (c *EventInvokeConfig) Clone() *EventInvokeConfig {
	n := *c
	if c.MaximumRetryAttempts != nil {
		v := *c.MaximumRetryAttempts
		n.MaximumRetryAttempts = &v
	}
	if c.MaximumEventAgeSec != nil {
		v := *c.MaximumEventAgeSec
		n.MaximumEventAgeSec = &v
	}
	return &n
}

// Retries is the number of retries after a function error; a nil config
// gives the default.
func (c *EventInvokeConfig) Retries() int {
	if c == nil || c.MaximumRetryAttempts == nil {
		return DefaultRetryAttempts
	}
	return *c.MaximumRetryAttempts
}

// MaxAge is how long an event may wait for a successful attempt; a nil
// config gives the default.
func (c *EventInvokeConfig) MaxAge() time.Duration {
	if c == nil || c.MaximumEventAgeSec == nil {
		return DefaultEventAgeSec * time.Second
	}
	return time.Duration(*c.MaximumEventAgeSec) * time.Second
}

// EventInvokeFor returns the asynchronous invocation settings of one of
// the function's qualifiers ("" means $LATEST), or nil when none were
// put. f must be the function's $LATEST, which holds them all.
func (f *Function) EventInvokeFor(qualifier string) *EventInvokeConfig {
	if qualifier == "" {
		qualifier = Latest
	}
	return f.EventInvoke[qualifier]
}

// DestinationKind says what a destination ARN points at.
type DestinationKind int

// Destination kinds.
const (
	// DestinationFunction is another function, invoked asynchronously.
	DestinationFunction DestinationKind = iota + 1
	// DestinationQueue is a Gust queue: a JetStream stream named by the
	// queue (see QueueStream), addressed with an SQS ARN.
	DestinationQueue
)

func (k DestinationKind) String() string {
	switch k {
	case DestinationFunction:
		return "function"
	case DestinationQueue:
		return "queue"
	}
	return "unknown"
}

// Destination is a parsed destination ARN.
type Destination struct {
	Kind DestinationKind
	// Name is the function or the queue.
	Name string
	// Qualifier is the function's version or alias ("": unqualified).
	Qualifier string
	ARN       string
}

// QueueStreamPrefix starts the name of every Gust queue's stream.
const QueueStreamPrefix = "GUST_QUEUE_"

// QueueStream is the JetStream stream that holds a Gust queue.
func QueueStream(queue string) string { return QueueStreamPrefix + queue }

// QueueSubject is the subject messages of a Gust queue are published on.
func QueueSubject(queue string) string { return "gust.queue." + queue }

var (
	functionDestRE = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$`)
	queueDestRE    = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:sqs:[a-z0-9-]+:\d{12}:(.+)$`)
	queueNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`)
	otherARNRE     = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:([a-z0-9-]+):`)
)

// ParseDestination parses a destination ARN: a function
// (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]) or a Gust
// queue (arn:aws:sqs:REGION:ACCOUNT:QUEUE, QUEUE of letters, digits, - and
// _, at most 80). field names the parameter in the error, which is a
// *ValidationError naming what is wrong.
func ParseDestination(field, arn string) (Destination, error) {
	bad := func(format string, a ...any) (Destination, error) {
		return Destination{}, &ValidationError{Field: field, Message: fmt.Sprintf(format, a...)}
	}
	if m := functionDestRE.FindStringSubmatch(arn); m != nil {
		return Destination{Kind: DestinationFunction, Name: m[1], Qualifier: m[2], ARN: arn}, nil
	}
	if m := queueDestRE.FindStringSubmatch(arn); m != nil {
		if !queueNameRE.MatchString(m[1]) {
			return bad("%s %s names the queue %q: a Gust queue name is 1 to %d letters, digits, hyphens or underscores (FIFO queues are not supported)", field, arn, m[1], MaxQueueNameLen)
		}
		return Destination{Kind: DestinationQueue, Name: m[1], ARN: arn}, nil
	}
	if m := otherARNRE.FindStringSubmatch(arn); m != nil {
		switch m[1] {
		case "lambda":
			return bad("%s %s is not a function ARN: use arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]", field, arn)
		case "sqs":
			return bad("%s %s is not a queue ARN: use arn:aws:sqs:REGION:ACCOUNT:QUEUE", field, arn)
		}
		return bad("%s %s is a %s ARN: Gust delivers to functions (arn:aws:lambda:...) and Gust queues (arn:aws:sqs:...) only", field, arn, m[1])
	}
	return bad("%s %q is not an ARN: give a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME) or a queue ARN (arn:aws:sqs:REGION:ACCOUNT:QUEUE)", field, arn)
}

// ValidateEventInvoke checks one qualifier's settings for function fn.
// It does not check that a destination function exists (the registry
// cannot know that at every call site; the gateway checks it).
func ValidateEventInvoke(fn string, c *EventInvokeConfig) error {
	if c.MaximumRetryAttempts != nil && (*c.MaximumRetryAttempts < 0 || *c.MaximumRetryAttempts > MaxRetryAttempts) {
		return &ValidationError{Field: "maximumRetryAttempts", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and %d", *c.MaximumRetryAttempts, MaxRetryAttempts)}
	}
	if c.MaximumEventAgeSec != nil && (*c.MaximumEventAgeSec < MinEventAgeSec || *c.MaximumEventAgeSec > MaxEventAgeSec) {
		return &ValidationError{Field: "maximumEventAgeInSeconds", Message: fmt.Sprintf("1 validation error detected: Value '%d' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between %d and %d", *c.MaximumEventAgeSec, MinEventAgeSec, MaxEventAgeSec)}
	}
	for _, d := range []struct{ field, arn string }{{"OnSuccess", c.OnSuccess}, {"OnFailure", c.OnFailure}} {
		if d.arn == "" {
			continue
		}
		if err := validateTarget(fn, "DestinationConfig."+d.field+".Destination", d.arn); err != nil {
			return err
		}
	}
	return nil
}

// validateTarget checks a destination or dead-letter ARN of function fn.
// A function may not name itself: every failure (or, for OnSuccess, every
// success) would invoke it again, forever.
func validateTarget(fn, field, arn string) error {
	d, err := ParseDestination(field, arn)
	if err != nil {
		return err
	}
	if d.Kind == DestinationFunction && d.Name == fn {
		return &ValidationError{Field: field, Message: fmt.Sprintf("%s %s is the function %s itself: a function cannot be its own destination or dead-letter target, each delivery would invoke it again", field, arn, fn)}
	}
	return nil
}

// validateEvents checks a function's dead-letter target and every
// qualifier's asynchronous invocation settings.
func validateEvents(f *Function) error {
	if f.DeadLetterTarget != "" {
		if err := validateTarget(f.Name, "DeadLetterConfig.TargetArn", f.DeadLetterTarget); err != nil {
			return err
		}
	}
	for q, c := range f.EventInvoke {
		if c == nil {
			return &ValidationError{Field: "qualifier", Message: fmt.Sprintf("the asynchronous invocation settings of %s:%s are empty", f.Name, q)}
		}
		if q != Latest {
			if err := ValidateQualifier(q); err != nil {
				return err
			}
		}
		if err := ValidateEventInvoke(f.Name, c); err != nil {
			return err
		}
	}
	return nil
}
