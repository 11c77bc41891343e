"""Developer tooling: offline Terraform toolchain, Lambda packaging, local deployment and the demo."""
