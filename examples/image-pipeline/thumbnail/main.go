// Command thumbnail makes a thumbnail of every image uploaded to the
// object bucket "uploads" and stores it as PNG in the bucket
// "thumbnails", under the upload's name with ".png" appended. An object
// trigger invokes it asynchronously with an S3 event notification, so it
// is an ordinary aws-lambda-go handler taking events.S3Event, run by
// Gust's process runtime (provided.al2023) as on Lambda. It reads and
// writes objects through the node's HTTP API with the token Gust gives it
// (GUST_API_URL, GUST_TOKEN), and resizes with the standard library.
package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif"  // registers GIF decoding
	_ "image/jpeg" // registers JPEG decoding
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// MaxSide is the longest side of a thumbnail, in pixels.
const MaxSide = 128

// MaxSource bounds the images read (decoding holds them in memory).
const MaxSource = 16 << 20

// Result lists the thumbnails made.
type Result struct {
	Thumbnails []string `json:"thumbnails"`
}

func main() { lambda.Start(handle) }

// objects reaches one object bucket through the node's API.
type objects struct{ base, token string }

func bucket(name string) objects {
	return objects{os.Getenv("GUST_API_URL") + "/gust/v1/objects/" + name + "/", os.Getenv("GUST_TOKEN")}
}

func (o objects) do(ctx context.Context, method, name, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, o.base+url.PathEscape(name), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, name, resp.Status, b)
	}
	return resp, nil
}

// Get streams an object.
func (o objects) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	resp, err := o.do(ctx, http.MethodGet, name, "", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Put stores an object.
func (o objects) Put(ctx context.Context, name, contentType string, body io.Reader) error {
	resp, err := o.do(ctx, http.MethodPut, name, contentType, body)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// imageError is a failure retrying cannot fix (Lambda would report its
// type as the errorType).
type imageError struct{ kind, msg string }

func (e *imageError) Error() string { return e.kind + ": " + e.msg }

func handle(ctx context.Context, ev events.S3Event) (Result, error) {
	var out Result
	in, thumbs := bucket("uploads"), bucket("thumbnails")
	for _, rec := range ev.Records {
		if !strings.HasPrefix(rec.EventName, "ObjectCreated:") {
			continue
		}
		name, err := url.QueryUnescape(rec.S3.Object.Key)
		if err != nil {
			return out, fmt.Errorf("object key %q: %w", rec.S3.Object.Key, err)
		}
		if rec.S3.Object.Size > MaxSource {
			return out, &imageError{"ImageTooLarge", fmt.Sprintf("%s is %d bytes; at most %d are read", name, rec.S3.Object.Size, MaxSource)}
		}
		r, err := in.Get(ctx, name)
		if err != nil {
			return out, fmt.Errorf("read %s: %w", name, err)
		}
		src, format, err := image.Decode(r)
		r.Close()
		if err != nil {
			return out, &imageError{"NotAnImage", fmt.Sprintf("%s is not a PNG, JPEG or GIF image: %v", name, err)}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, Fit(src, MaxSide)); err != nil {
			return out, err
		}
		thumb := name + ".png"
		if err := thumbs.Put(ctx, thumb, "image/png", &buf); err != nil {
			return out, fmt.Errorf("store %s: %w", thumb, err)
		}
		fmt.Fprintf(os.Stderr, "thumbnail %s (%s %dx%d) -> %s\n", name, format, src.Bounds().Dx(), src.Bounds().Dy(), thumb)
		out.Thumbnails = append(out.Thumbnails, thumb)
	}
	return out, nil
}

// Fit scales img down (never up) so that its longest side is at most
// side pixels, averaging the source pixels each thumbnail pixel covers.
func Fit(img image.Image, side int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= side && h <= side {
		return img
	}
	tw, th := side, h*side/w
	if h > w {
		tw, th = w*side/h, side
	}
	tw, th = max(tw, 1), max(th, 1)
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	for y := range th {
		y0, y1 := b.Min.Y+y*h/th, b.Min.Y+(y+1)*h/th
		for x := range tw {
			x0, x1 := b.Min.X+x*w/tw, b.Min.X+(x+1)*w/tw
			var r, g, bl, a, n uint64
			for sy := y0; sy < max(y1, y0+1); sy++ {
				for sx := x0; sx < max(x1, x0+1); sx++ {
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			i := dst.PixOffset(x, y)
			dst.Pix[i+0], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = uint8(r/n>>8), uint8(g/n>>8), uint8(bl/n>>8), uint8(a/n>>8)
		}
	}
	return dst
}
