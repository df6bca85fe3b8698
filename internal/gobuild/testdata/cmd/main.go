// Command cmd is a minimal wasip1 command for gobuild's tests.
package main

import "fmt"

func main() { fmt.Println("hi") }
