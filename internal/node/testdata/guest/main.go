// Command guest is a WASI command used by the node's tests. It reads an
// event from stdin and acts on it: echo it, log, exit with a status, loop,
// sleep, or allocate memory until it is stopped.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

type event struct {
	Echo    any    `json:"echo"`
	Log     string `json:"log"`
	LogN    int    `json:"logN"`
	Exit    int    `json:"exit"`
	Loop    bool   `json:"loop"`
	SleepMs int    `json:"sleepMs"`
	GrowMB  int    `json:"growMB"`
	Env     string `json:"env"`
	Open    string `json:"open"`
	OutMB   int    `json:"outMB"`
	// RawPath is set when the event is a function-URL event.
	RawPath *string `json:"rawPath"`
	// Records is a queue trigger's batch (an SQS-shaped event), Changes
	// a PostgreSQL trigger's: a record whose body is "poison", or a new
	// row whose item is "poison", fails the invocation.
	Records []struct {
		Body string `json:"body"`
	} `json:"Records"`
	Changes []struct {
		New map[string]any `json:"new"`
	} `json:"changes"`
}

var sink [][]byte

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read stdin:", err)
		os.Exit(1)
	}
	var ev event
	if err := json.Unmarshal(in, &ev); err != nil {
		fmt.Fprintln(os.Stderr, "bad event:", err)
		os.Exit(1)
	}
	if ev.RawPath != nil {
		// Answer a function-URL event with the event itself, as a
		// structured response.
		json.NewEncoder(os.Stdout).Encode(map[string]any{
			"statusCode": 203,
			"headers":    map[string]string{"content-type": "application/json", "x-guest": "yes"},
			"cookies":    []string{"session=abc; Path=/", "theme=dark"},
			"body":       string(in),
		})
		return
	}
	for _, r := range ev.Records {
		if r.Body == "poison" {
			fmt.Fprintln(os.Stderr, "poison message")
			os.Exit(3)
		}
	}
	for _, c := range ev.Changes {
		if c.New["item"] == "poison" {
			fmt.Fprintln(os.Stderr, "poison row")
			os.Exit(3)
		}
	}
	if ev.Log != "" {
		fmt.Fprintln(os.Stderr, ev.Log)
	}
	for i := 0; i < ev.LogN; i++ {
		fmt.Fprintf(os.Stderr, "line %06d of a long log\n", i)
	}
	if ev.SleepMs > 0 {
		time.Sleep(time.Duration(ev.SleepMs) * time.Millisecond)
	}
	for ev.Loop {
	}
	for i := 0; i < ev.GrowMB; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j)
		}
		sink = append(sink, b)
	}
	if ev.Exit != 0 {
		fmt.Fprintf(os.Stderr, "exiting with %d\n", ev.Exit)
		os.Exit(ev.Exit)
	}
	out := map[string]any{"echo": ev.Echo}
	if ev.Env != "" {
		v, ok := os.LookupEnv(ev.Env)
		out["env"] = v
		out["envSet"] = ok
	}
	if ev.Open != "" {
		_, err := os.ReadFile(ev.Open)
		out["openErr"] = fmt.Sprint(err)
	}
	if ev.OutMB > 0 {
		b := make([]byte, ev.OutMB<<20)
		for i := range b {
			b[i] = 'x'
		}
		out["big"] = string(b)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
