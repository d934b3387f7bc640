#!/usr/bin/env bats
# Every installed package is up: its state, its containers (podman) and its quadlet units
# (systemctl --user) agree. Each test names the culprits when it fails.

setup() {
  load common
}

@test "every installed package is running and healthy" {
  problems=$(package_problems)
  fail_on "$problems"
}

@test "every installed package's containers are up" {
  problems=$(container_problems)
  fail_on "$problems"
}

@test "every installed package's quadlet units are active" {
  problems=$(unit_problems)
  fail_on "$problems"
}

@test "every running container belongs to an installed package" {
  problems=$(orphan_container_problems)
  fail_on "$problems"
}
