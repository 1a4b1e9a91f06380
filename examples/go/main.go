// A Meshwork client in Go, with code generated from ../../proto alone (buf generate with
// protoc-gen-go, protoc-gen-go-grpc and protoc-gen-connect-go). It makes the same calls twice,
// once over gRPC with grpc-go and once over the Connect protocol with connect-go: sign up, sign
// in, count the users online, and be refused the list of them (a member is not an admin).
//
// Flags (defaults: `make dev`): -identity and -presence, the base URLs of the RPC ports.
// Exits non-zero when anything is not as described.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "meshwork.example/client/gen/meshwork/identity/v1"
	"meshwork.example/client/gen/meshwork/identity/v1/identityv1connect"
	presencev1 "meshwork.example/client/gen/meshwork/presence/v1"
	"meshwork.example/client/gen/meshwork/presence/v1/presencev1connect"
)

const password = "a-go-passphrase-1"

func main() {
	identityURL := flag.String("identity", "http://127.0.0.1:50051", "identity's RPC port")
	presenceURL := flag.String("presence", "http://127.0.0.1:50052", "presence's RPC port")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := overGRPC(ctx, hostPort(*identityURL), hostPort(*presenceURL)); err != nil {
		log.Fatalf("gRPC: %v", err)
	}
	if err := overConnect(ctx, *identityURL, *presenceURL); err != nil {
		log.Fatalf("Connect: %v", err)
	}
}

// overGRPC uses grpc-go's generated clients over HTTP/2 cleartext.
func overGRPC(ctx context.Context, identityAddr, presenceAddr string) error {
	identityConn, err := grpc.NewClient(identityAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer identityConn.Close()
	presenceConn, err := grpc.NewClient(presenceAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer presenceConn.Close()
	identity := identityv1.NewIdentityServiceClient(identityConn)
	presence := presencev1.NewPresenceServiceClient(presenceConn)

	email := uniqueEmail("go-grpc")
	signUp, err := identity.SignUp(ctx, &identityv1.SignUpRequest{Email: email, Password: password, DisplayName: "Gopher"})
	if err != nil {
		return fmt.Errorf("SignUp: %w", err)
	}
	fmt.Printf("gRPC SignUp: %s (%s)\n", signUp.GetUser().GetEmail(), signUp.GetUser().GetId())
	signIn, err := identity.SignIn(ctx, &identityv1.SignInRequest{Email: email, Password: password})
	if err != nil {
		return fmt.Errorf("SignIn: %w", err)
	}
	fmt.Printf("gRPC SignIn: token %s...\n", signIn.GetAccessToken()[:16])

	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+signIn.GetAccessToken())
	count, err := eventually(func() (int64, error) {
		res, err := presence.GetOnlineCount(authed, &presencev1.GetOnlineCountRequest{})
		return res.GetCount(), err
	})
	if err != nil {
		return fmt.Errorf("GetOnlineCount: %w", err)
	}
	fmt.Printf("gRPC GetOnlineCount: %d\n", count)

	_, err = presence.ListOnlineUsers(authed, &presencev1.ListOnlineUsersRequest{})
	if status.Code(err) != codes.PermissionDenied {
		return fmt.Errorf("ListOnlineUsers: want PermissionDenied, got %v", err)
	}
	fmt.Printf("gRPC ListOnlineUsers: refused, %s\n", status.Code(err))
	return nil
}

// overConnect uses connect-go's generated clients with the Connect protocol over HTTP/1.1.
func overConnect(ctx context.Context, identityURL, presenceURL string) error {
	identity := identityv1connect.NewIdentityServiceClient(http.DefaultClient, identityURL)
	presence := presencev1connect.NewPresenceServiceClient(http.DefaultClient, presenceURL)

	email := uniqueEmail("go-connect")
	signUp, err := identity.SignUp(ctx, connect.NewRequest(&identityv1.SignUpRequest{Email: email, Password: password, DisplayName: "Gopher"}))
	if err != nil {
		return fmt.Errorf("SignUp: %w", err)
	}
	fmt.Printf("Connect SignUp: %s (%s)\n", signUp.Msg.GetUser().GetEmail(), signUp.Msg.GetUser().GetId())
	signIn, err := identity.SignIn(ctx, connect.NewRequest(&identityv1.SignInRequest{Email: email, Password: password}))
	if err != nil {
		return fmt.Errorf("SignIn: %w", err)
	}
	token := signIn.Msg.GetAccessToken()
	fmt.Printf("Connect SignIn: token %s...\n", token[:16])

	count, err := eventually(func() (int64, error) {
		req := connect.NewRequest(&presencev1.GetOnlineCountRequest{})
		req.Header().Set("Authorization", "Bearer "+token)
		res, err := presence.GetOnlineCount(ctx, req)
		if err != nil {
			return 0, err
		}
		return res.Msg.GetCount(), nil
	})
	if err != nil {
		return fmt.Errorf("GetOnlineCount: %w", err)
	}
	fmt.Printf("Connect GetOnlineCount: %d\n", count)

	req := connect.NewRequest(&presencev1.ListOnlineUsersRequest{})
	req.Header().Set("Authorization", "Bearer "+token)
	_, err = presence.ListOnlineUsers(ctx, req)
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		return fmt.Errorf("ListOnlineUsers: want permission_denied, got %v", err)
	}
	fmt.Printf("Connect ListOnlineUsers: refused, %s\n", connect.CodeOf(err))
	return nil
}

// eventually polls the online count until it includes this sign-in: presence counts from the
// event stream, a few milliseconds behind identity.
func eventually(count func() (int64, error)) (int64, error) {
	for attempt := 0; attempt < 50; attempt++ {
		n, err := count()
		if err != nil {
			return 0, err
		}
		if n >= 1 {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, errors.New("the online count stayed at 0")
}

func uniqueEmail(prefix string) string {
	random := make([]byte, 6)
	_, _ = rand.Read(random)
	return fmt.Sprintf("%s-%s@example.com", prefix, hex.EncodeToString(random))
}

// hostPort turns a base URL into the host:port grpc-go dials.
func hostPort(base string) string {
	parsed, err := url.Parse(base)
	if err != nil || parsed.Host == "" {
		log.Fatalf("not a base URL: %q", base)
	}
	return parsed.Host
}
