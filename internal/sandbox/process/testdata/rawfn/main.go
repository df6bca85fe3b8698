// Command rawfn speaks the Lambda Runtime API by hand to test how Gust
// treats misbehaving runtimes. GUST_MODE picks the misbehaviour at init;
// the event picks it per invocation.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

func post(path string, body []byte, header ...string) int {
	req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "post:", err)
		return -1
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func main() {
	switch os.Getenv("GUST_MODE") {
	case "exit-init":
		fmt.Println("initialising, then exiting")
		os.Exit(3)
	case "never-next":
		time.Sleep(time.Hour)
	case "init-error":
		post("/init/error", []byte(`{"errorType":"Custom.InitFailed","errorMessage":"cannot connect to the database"}`), "Lambda-Runtime-Function-Error-Type", "Custom.InitFailed")
		time.Sleep(time.Hour)
	}
	statuses := map[string]int{}
	for {
		res, err := http.Get(base + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			os.Exit(1)
		}
		event, _ := io.ReadAll(res.Body)
		res.Body.Close()
		id := res.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var op string
		json.Unmarshal(event, &op)
		switch op {
		case "twice":
			statuses["first"] = post("/invocation/"+id+"/response", []byte(`"first"`))
			statuses["second"] = post("/invocation/"+id+"/response", []byte(`"second"`))
			statuses["errorAfter"] = post("/invocation/"+id+"/error", []byte(`{}`))
			statuses["unknown"] = post("/invocation/no-such-id/response", []byte(`"x"`))
			statuses["initErrorLate"] = post("/init/error", []byte(`{}`))
		case "report":
			b, _ := json.Marshal(statuses)
			post("/invocation/"+id+"/response", b)
		case "big":
			statuses["big"] = post("/invocation/"+id+"/response", []byte(`"`+strings.Repeat("z", 7<<20)+`"`))
		case "garbage-response":
			post("/invocation/"+id+"/response", []byte("\x00\xffnot json at all"))
		case "garbage-error":
			post("/invocation/"+id+"/error", []byte("<<<garbage>>>"), "Lambda-Runtime-Function-Error-Type", "")
		case "typed-error":
			post("/invocation/"+id+"/error", []byte(`{"errorType":"MyError","errorMessage":"it broke","stackTrace":["a","b"]}`), "Lambda-Runtime-Function-Error-Type", "MyError")
		case "headers":
			b, _ := json.Marshal(map[string]string{
				"deadline": res.Header.Get("Lambda-Runtime-Deadline-Ms"),
				"arn":      res.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
				"trace":    res.Header.Get("Lambda-Runtime-Trace-Id"),
			})
			post("/invocation/"+id+"/response", b)
		default:
			post("/invocation/"+id+"/response", event)
		}
	}
}
