package api

// Paths of the Lambda API operations added for versions, aliases, function
// URL configuration, tags and account settings; {name} is a function name
// or ARN.
const (
	// TagsPath + "/" + ARN: POST tags, DELETE ?tagKeys= untags, GET lists.
	TagsPath = "/2017-03-31/tags"
	// AccountSettingsPath answers GetAccountSettings.
	AccountSettingsPath = "/2016-08-19/account-settings"
	// URLConfigPath + "/{name}/url" serves the function URL configuration.
	URLConfigPath = "/2021-10-31/functions"
	// KeysPath is Gust's access key management: POST creates, GET lists,
	// DELETE KeysPath/{id} revokes. Admin keys only.
	KeysPath = "/gust/v1/keys"
)

// Lambda exception names added with versions, aliases and access control.
const (
	ErrAccessDenied                   = "AccessDeniedException"
	ErrProvisionedConcurrencyNotFound = "ProvisionedConcurrencyConfigNotFoundException"
)

// PublishVersionRequest is the body of PublishVersion.
type PublishVersionRequest struct {
	CodeSha256  string `json:"CodeSha256,omitempty"`
	Description string `json:"Description,omitempty"`
	RevisionID  string `json:"RevisionId,omitempty"`
}

// ListVersionsResponse is the body of ListVersionsByFunction.
type ListVersionsResponse struct {
	Versions   []FunctionConfiguration `json:"Versions"`
	NextMarker *string                 `json:"NextMarker,omitempty"`
}

// AliasRoutingConfiguration splits an alias's traffic: each additional
// version (at most one) receives its weight (0..1) of invocations, the
// alias's FunctionVersion the rest.
type AliasRoutingConfiguration struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
}

// CreateAliasRequest is the body of CreateAlias.
type CreateAliasRequest struct {
	Name            string                     `json:"Name"`
	FunctionVersion string                     `json:"FunctionVersion"`
	Description     string                     `json:"Description,omitempty"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
}

// UpdateAliasRequest is the body of UpdateAlias. Empty or nil fields are
// left unchanged; a RoutingConfig with no weights removes the split.
type UpdateAliasRequest struct {
	FunctionVersion string                     `json:"FunctionVersion,omitempty"`
	Description     *string                    `json:"Description,omitempty"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
	RevisionID      string                     `json:"RevisionId,omitempty"`
}

// AliasConfiguration describes an alias, as Lambda does.
type AliasConfiguration struct {
	AliasArn        string                     `json:"AliasArn"`
	Name            string                     `json:"Name"`
	FunctionVersion string                     `json:"FunctionVersion"`
	Description     string                     `json:"Description"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
	RevisionID      string                     `json:"RevisionId"`
}

// ListAliasesResponse is the body of ListAliases.
type ListAliasesResponse struct {
	Aliases    []AliasConfiguration `json:"Aliases"`
	NextMarker *string              `json:"NextMarker,omitempty"`
}

// ListProvisionedConcurrencyConfigsResponse is the body of
// ListProvisionedConcurrencyConfigs.
type ListProvisionedConcurrencyConfigsResponse struct {
	ProvisionedConcurrencyConfigs []ProvisionedConcurrencyConfigListItem `json:"ProvisionedConcurrencyConfigs"`
	NextMarker                    *string                                `json:"NextMarker,omitempty"`
}

// ProvisionedConcurrencyConfigListItem is one entry of
// ListProvisionedConcurrencyConfigs.
type ProvisionedConcurrencyConfigListItem struct {
	FunctionArn string `json:"FunctionArn"`
	ProvisionedConcurrencyConfig
}

// Cors is a function URL's cross-origin resource sharing settings.
type Cors struct {
	AllowCredentials bool     `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           int32    `json:"MaxAge,omitempty"`
}

// Function URL auth types.
const (
	AuthTypeNone   = "NONE"
	AuthTypeAWSIAM = "AWS_IAM"
)

// FunctionURLConfigRequest is the body of CreateFunctionUrlConfig and
// UpdateFunctionUrlConfig (on update, empty fields are left unchanged).
type FunctionURLConfigRequest struct {
	AuthType   string `json:"AuthType,omitempty"`
	Cors       *Cors  `json:"Cors,omitempty"`
	InvokeMode string `json:"InvokeMode,omitempty"`
}

// FunctionURLConfig describes a function URL, as Lambda does.
type FunctionURLConfig struct {
	FunctionURL      string `json:"FunctionUrl"`
	FunctionArn      string `json:"FunctionArn"`
	AuthType         string `json:"AuthType"`
	Cors             *Cors  `json:"Cors,omitempty"`
	CreationTime     string `json:"CreationTime"`
	LastModifiedTime string `json:"LastModifiedTime,omitempty"`
	InvokeMode       string `json:"InvokeMode,omitempty"`
}

// TagResourceRequest is the body of TagResource.
type TagResourceRequest struct {
	Tags map[string]string `json:"Tags"`
}

// ListTagsResponse is the body of ListTags.
type ListTagsResponse struct {
	Tags map[string]string `json:"Tags"`
}

// AccountLimit is the node's limits, as GetAccountSettings reports them.
type AccountLimit struct {
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int32 `json:"ConcurrentExecutions"`
	UnreservedConcurrentExecutions int32 `json:"UnreservedConcurrentExecutions"`
}

// AccountUsage is the node's usage, as GetAccountSettings reports it.
type AccountUsage struct {
	TotalCodeSize int64 `json:"TotalCodeSize"`
	FunctionCount int64 `json:"FunctionCount"`
}

// AccountSettings is the body of GetAccountSettings.
type AccountSettings struct {
	AccountLimit AccountLimit `json:"AccountLimit"`
	AccountUsage AccountUsage `json:"AccountUsage"`
}

// Access key scopes.
const (
	// ScopeAdmin allows every operation.
	ScopeAdmin = "admin"
	// ScopeInvoke allows Invoke and AWS_IAM function URLs only,
	// optionally only on named functions.
	ScopeInvoke = "invoke"
)

// CreateKeyRequest is the body of POST KeysPath.
type CreateKeyRequest struct {
	Scope string `json:"scope"`
	// Functions limits an invoke key to these function names (empty: all).
	Functions   []string `json:"functions,omitempty"`
	Description string   `json:"description,omitempty"`
}

// AccessKey describes a key. SecretAccessKey is set only in the answer to
// its creation: the node never shows it again.
type AccessKey struct {
	AccessKeyID     string   `json:"accessKeyId"`
	SecretAccessKey string   `json:"secretAccessKey,omitempty"`
	Scope           string   `json:"scope"`
	Functions       []string `json:"functions,omitempty"`
	Description     string   `json:"description,omitempty"`
	Created         string   `json:"created"`
}

// ListKeysResponse is the body of GET KeysPath.
type ListKeysResponse struct {
	Keys []AccessKey `json:"keys"`
}
