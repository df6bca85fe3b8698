package api

// ListFunctionURLConfigsResponse is the body of ListFunctionUrlConfigs
// (GET URLConfigPath + "/{name}/urls"): the function's unqualified URL
// first, then its aliases' URLs by alias name.
type ListFunctionURLConfigsResponse struct {
	FunctionURLConfigs []FunctionURLConfig `json:"FunctionUrlConfigs"`
	NextMarker         *string             `json:"NextMarker,omitempty"`
}
