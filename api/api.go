// Package api holds the wire shapes of a Gust node's HTTP API: the subset of
// the AWS Lambda API (2015-03-31) that Gust serves, with Lambda's field
// names, and the error shape AWS SDKs decode. Both the gateway and the
// public client use these types, so they cannot drift apart.
package api

import "time"

// Lambda API paths.
const (
	// FunctionsPath is the collection: POST creates, GET lists.
	FunctionsPath = "/2015-03-31/functions"
	// LogsPath is Gust's own endpoint for reading a function's logs:
	// GET LogsPath/{name}?since=RFC3339&follow=1.
	LogsPath = "/gust/v1/logs"
	// UsagePath serves metered usage: GET UsagePath?since=RFC3339&function=NAME.
	UsagePath = "/gust/v1/usage"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// Invocation types accepted in X-Amz-Invocation-Type.
const (
	InvocationRequestResponse = "RequestResponse"
	InvocationEvent           = "Event"
	InvocationDryRun          = "DryRun"
)

// Header names used by Invoke.
const (
	HeaderInvocationType  = "X-Amz-Invocation-Type"
	HeaderLogType         = "X-Amz-Log-Type"
	HeaderLogResult       = "X-Amz-Log-Result"
	HeaderFunctionError   = "X-Amz-Function-Error"
	HeaderExecutedVersion = "X-Amz-Executed-Version"
	HeaderRequestID       = "X-Amzn-Requestid"
	HeaderErrorType       = "X-Amzn-Errortype"
)

// TimeLayout is the layout of Lambda's LastModified field.
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// Environment is a function's environment variables.
type Environment struct {
	Variables map[string]string `json:"Variables,omitempty"`
}

// EnvironmentResponse is the environment as reported back.
type EnvironmentResponse struct {
	Variables map[string]string `json:"Variables,omitempty"`
}

// FunctionCode carries code on CreateFunction. Only ZipFile is supported:
// for runtime wasm, a zip holding one .wasm module at its root or the raw
// module; for the Lambda runtimes, a zip of the function's code (with an
// executable bootstrap at its root for provided.*).
type FunctionCode struct {
	ZipFile         []byte `json:"ZipFile,omitempty"`
	S3Bucket        string `json:"S3Bucket,omitempty"`
	S3Key           string `json:"S3Key,omitempty"`
	S3ObjectVersion string `json:"S3ObjectVersion,omitempty"`
	ImageURI        string `json:"ImageUri,omitempty"`
}

// CreateFunctionRequest is the body of CreateFunction.
type CreateFunctionRequest struct {
	FunctionName  string            `json:"FunctionName"`
	Runtime       string            `json:"Runtime,omitempty"`
	Role          string            `json:"Role,omitempty"`
	Handler       string            `json:"Handler,omitempty"`
	Code          *FunctionCode     `json:"Code,omitempty"`
	Description   string            `json:"Description,omitempty"`
	Timeout       *int32            `json:"Timeout,omitempty"`
	MemorySize    *int32            `json:"MemorySize,omitempty"`
	Publish       bool              `json:"Publish,omitempty"`
	Environment   *Environment      `json:"Environment,omitempty"`
	PackageType   string            `json:"PackageType,omitempty"`
	Architectures []string          `json:"Architectures,omitempty"`
	Tags          map[string]string `json:"Tags,omitempty"`
	// DeadLetterConfig: see events.go.
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	// GustIdleTimeout is Gust's extension: seconds an idle instance is
	// kept (0 or absent: the node's default).
	GustIdleTimeout *int32 `json:"GustIdleTimeout,omitempty"`
	// GustGrants is Gust's extension: the storage buckets and outbound
	// hosts the function may reach (absent: none).
	GustGrants *Grants `json:"GustGrants,omitempty"`
}

// Grants is what a function may reach beyond its code (Gust's
// extension): KV and object buckets by name, and outbound HTTP hosts
// ("api.example.com", "api.example.com:8443", "*.example.com").
type Grants struct {
	KV      []string `json:"KV,omitempty"`
	Objects []string `json:"Objects,omitempty"`
	Hosts   []string `json:"Hosts,omitempty"`
}

// UpdateFunctionCodeRequest is the body of UpdateFunctionCode.
type UpdateFunctionCodeRequest struct {
	ZipFile       []byte   `json:"ZipFile,omitempty"`
	S3Bucket      string   `json:"S3Bucket,omitempty"`
	S3Key         string   `json:"S3Key,omitempty"`
	ImageURI      string   `json:"ImageUri,omitempty"`
	Publish       bool     `json:"Publish,omitempty"`
	DryRun        bool     `json:"DryRun,omitempty"`
	RevisionID    string   `json:"RevisionId,omitempty"`
	Architectures []string `json:"Architectures,omitempty"`
}

// UpdateFunctionConfigurationRequest is the body of
// UpdateFunctionConfiguration. Nil fields are left unchanged.
type UpdateFunctionConfigurationRequest struct {
	Runtime     *string      `json:"Runtime,omitempty"`
	Role        *string      `json:"Role,omitempty"`
	Handler     *string      `json:"Handler,omitempty"`
	Description *string      `json:"Description,omitempty"`
	Timeout     *int32       `json:"Timeout,omitempty"`
	MemorySize  *int32       `json:"MemorySize,omitempty"`
	Environment *Environment `json:"Environment,omitempty"`
	RevisionID  string       `json:"RevisionId,omitempty"`
	// DeadLetterConfig: see events.go.
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	// GustIdleTimeout: see CreateFunctionRequest.
	GustIdleTimeout *int32 `json:"GustIdleTimeout,omitempty"`
	// GustGrants replaces the function's grants (an empty object
	// removes them all).
	GustGrants *Grants `json:"GustGrants,omitempty"`
}

// FunctionConfiguration describes a function, as Lambda does.
type FunctionConfiguration struct {
	FunctionName     string               `json:"FunctionName"`
	FunctionArn      string               `json:"FunctionArn"`
	Runtime          string               `json:"Runtime"`
	Role             string               `json:"Role,omitempty"`
	Handler          string               `json:"Handler,omitempty"`
	CodeSize         int64                `json:"CodeSize"`
	Description      string               `json:"Description"`
	Timeout          int32                `json:"Timeout"`
	MemorySize       int32                `json:"MemorySize"`
	LastModified     string               `json:"LastModified"`
	CodeSha256       string               `json:"CodeSha256"`
	Version          string               `json:"Version"`
	Environment      *EnvironmentResponse `json:"Environment,omitempty"`
	RevisionID       string               `json:"RevisionId"`
	State            string               `json:"State"`
	LastUpdateStatus string               `json:"LastUpdateStatus"`
	PackageType      string               `json:"PackageType"`
	Architectures    []string             `json:"Architectures"`
	DeadLetterConfig *DeadLetterConfig    `json:"DeadLetterConfig,omitempty"`
	// Gust's extensions: what the runtime found the code to be, and the
	// function's own idle keep-alive in seconds (0: the node's default).
	GustKind        string `json:"GustKind,omitempty"`
	GustIdleTimeout int32  `json:"GustIdleTimeout,omitempty"`
	// GustIsolation is Gust's extension: how the function's instances are
	// sandboxed on this node, one line per measure, such as
	// "on: pid namespace" or "off: network namespace: shared with the host".
	GustIsolation []string `json:"GustIsolation,omitempty"`
	// GustGrants is what the function may reach (see Grants).
	GustGrants *Grants `json:"GustGrants,omitempty"`
}

// Concurrency is a function's reserved concurrency
// (PutFunctionConcurrency, GetFunctionConcurrency).
type Concurrency struct {
	ReservedConcurrentExecutions *int32 `json:"ReservedConcurrentExecutions,omitempty"`
}

// PutProvisionedConcurrencyConfigRequest is the body of
// PutProvisionedConcurrencyConfig.
type PutProvisionedConcurrencyConfigRequest struct {
	ProvisionedConcurrentExecutions *int32 `json:"ProvisionedConcurrentExecutions"`
}

// ProvisionedConcurrencyConfig is the state of provisioned concurrency.
type ProvisionedConcurrencyConfig struct {
	RequestedProvisionedConcurrentExecutions int32  `json:"RequestedProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int32  `json:"AllocatedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int32  `json:"AvailableProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	LastModified                             string `json:"LastModified"`
}

// FunctionCodeLocation says where code can be fetched from.
type FunctionCodeLocation struct {
	RepositoryType string `json:"RepositoryType"`
	Location       string `json:"Location,omitempty"`
}

// GetFunctionResponse is the body of GetFunction.
type GetFunctionResponse struct {
	Configuration FunctionConfiguration `json:"Configuration"`
	Code          FunctionCodeLocation  `json:"Code"`
	Tags          map[string]string     `json:"Tags,omitempty"`
	Concurrency   *Concurrency          `json:"Concurrency,omitempty"`
}

// ListFunctionsResponse is the body of ListFunctions.
type ListFunctionsResponse struct {
	Functions  []FunctionConfiguration `json:"Functions"`
	NextMarker *string                 `json:"NextMarker,omitempty"`
}

// Error is Lambda's error body. The type is also sent in the
// X-Amzn-ErrorType header, which is what AWS SDKs read first.
type Error struct {
	Type    string `json:"Type"`
	Message string `json:"message"`
	// Code is the exception name (for example ResourceNotFoundException).
	Code string `json:"-"`
	// Status is the HTTP status.
	Status int `json:"-"`
	// Reason is set on TooManyRequestsException.
	Reason string `json:"Reason,omitempty"`
	// RetryAfter is sent as the Retry-After header on throttles.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Lambda exception names used by Gust.
const (
	ErrResourceNotFound       = "ResourceNotFoundException"
	ErrResourceConflict       = "ResourceConflictException"
	ErrInvalidParameterValue  = "InvalidParameterValueException"
	ErrInvalidRequestContent  = "InvalidRequestContentException"
	ErrRequestTooLarge        = "RequestTooLargeException"
	ErrTooManyRequests        = "TooManyRequestsException"
	ErrService                = "ServiceException"
	ErrInvalidSignature       = "InvalidSignatureException"
	ErrUnrecognizedClient     = "UnrecognizedClientException"
	ErrMissingAuthentication  = "MissingAuthenticationTokenException"
	ErrCodeStorageExceeded    = "CodeStorageExceededException"
	ErrInvalidZipFile         = "InvalidZipFileException"
	ErrUnsupportedMediaType   = "UnsupportedMediaTypeException"
	ErrPreconditionFailed     = "PreconditionFailedException"
	ErrCodeVerificationFailed = "CodeVerificationFailedException"
)

// LogEvent is one invocation's log as served by LogsPath: the framed
// START/END/REPORT text and the guest's output.
type LogEvent struct {
	Time      time.Time `json:"time"`
	Function  string    `json:"function"`
	RequestID string    `json:"requestId"`
	Text      string    `json:"text"`
}

// MaxPayload is the largest synchronous request or response payload.
const MaxPayload = 6 * 1024 * 1024

// Prices is a price table in US dollars.
type Prices struct {
	PerRequest  float64 `json:"perRequest"`
	PerGBSecond float64 `json:"perGBSecond"`
}

// Cost is what usage costs under a price table.
type Cost struct {
	Requests float64 `json:"requests"`
	Compute  float64 `json:"compute"`
	Total    float64 `json:"total"`
}

// UsageLine is one function version's metered usage (or a total).
type UsageLine struct {
	Function   string `json:"function,omitempty"`
	Version    string `json:"version,omitempty"`
	Requests   int64  `json:"requests"`
	Errors     int64  `json:"errors"`
	Timeouts   int64  `json:"timeouts"`
	Throttles  int64  `json:"throttles"`
	ColdStarts int64  `json:"coldStarts"`
	DurationUs int64  `json:"durationUs"`
	BilledMs   int64  `json:"billedMs"`
	// MBMs is the sum of billed milliseconds times memory MB.
	MBMs      int64   `json:"mbMs"`
	InitUs    int64   `json:"initUs"`
	GBSeconds float64 `json:"gbSeconds"`
	Cost      Cost    `json:"cost"`
}

// UsageReport is the answer of GET UsagePath.
type UsageReport struct {
	Since     time.Time   `json:"since"`
	Until     time.Time   `json:"until"`
	Prices    Prices      `json:"prices"`
	Functions []UsageLine `json:"functions"`
	Total     UsageLine   `json:"total"`
}
