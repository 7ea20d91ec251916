module ocistore.test/gotar

go 1.19
