package api

import (
	"context"
	"net/http"
	"reflect"

	"github.com/canopy-sdn/canopy/internal/ec2"
)

// Accounts manages the tenant accounts of the EC2 API. The server's EC2
// endpoint implements it (it holds the key that seals access-key secrets);
// the REST API serves it so that minting credentials is an operator's act on
// the operator's listener, never something the tenant-facing EC2 listener
// accepts.
type Accounts interface {
	CreateAccount(ctx context.Context, name string) (*ec2.NewCredentials, error)
	ListAccounts(ctx context.Context) ([]ec2.AccountInfo, error)
	DeleteAccount(ctx context.Context, id string) error
}

// AccountRequest is the body of POST /accounts.
type AccountRequest struct {
	Name string `json:"name"`
}

func (s *server) accountRoutes() []route {
	return []route{
		{method: "GET", path: "/accounts", summary: "List the EC2 API's tenant accounts with their access key ids", resp: reflect.TypeFor[ec2.AccountInfo](), list: true, status: 200, h: s.listAccounts},
		{method: "POST", path: "/accounts", summary: "Create an EC2 tenant account with an access key and a default VPC; the only answer that shows the secret", body: reflect.TypeFor[AccountRequest](), resp: reflect.TypeFor[ec2.NewCredentials](), status: 201, h: s.createAccount},
		{method: "DELETE", path: "/accounts/{id}", summary: "Delete an account, its access keys and everything it owns", status: 204, h: s.deleteAccount},
	}
}

// errNoEC2 answers the account routes of a server whose EC2 endpoint is off.
var errNoEC2 = &httpError{status: http.StatusNotFound, reason: "this server runs no EC2 endpoint (--ec2-listen off), so it has no accounts"}

func (s *server) listAccounts(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.accounts == nil {
		return 0, nil, errNoEC2
	}
	as, err := s.accounts.ListAccounts(r.Context())
	if err != nil {
		return 0, nil, err
	}
	if as == nil {
		as = []ec2.AccountInfo{}
	}
	return http.StatusOK, as, nil
}

func (s *server) createAccount(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.accounts == nil {
		return 0, nil, errNoEC2
	}
	var req AccountRequest
	if err := decode(w, r, &req); err != nil {
		return 0, nil, err
	}
	nc, err := s.accounts.CreateAccount(r.Context(), req.Name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, nc, nil
}

func (s *server) deleteAccount(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if s.accounts == nil {
		return 0, nil, errNoEC2
	}
	if err := s.accounts.DeleteAccount(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
