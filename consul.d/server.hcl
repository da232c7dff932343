# docker-compose's Consul: one server that is its own cluster, its state on the consul-data
# volume (registrations and ACLs survive a restart), ACLs on and denying by default.
#
# No secret is in this file: the initial management token comes from .env through the image's
# CONSUL_LOCAL_CONFIG (written next to this file at start), and consul-acl-init gives the agent,
# Prometheus and each service a token of its own (consul.d/acl-bootstrap.sh).

node_name        = "consul"
datacenter       = "dc1"
server           = true
bootstrap_expect = 1

# The HTTP API on every interface (the services, Prometheus, the UI on 127.0.0.1:8500); cluster
# traffic (gossip, RPC) on the loopback only, since no other agent ever joins.
client_addr = "0.0.0.0"
bind_addr   = "127.0.0.1"
log_level   = "WARN"

ui_config {
  enabled = true
}

ports {
  # Nothing asks Consul's DNS (nginx resolves through Docker's DNS, the services through the
  # HTTP API), so it is off, and the anonymous token needs no read right for it.
  dns = -1
}

acl {
  enabled        = true
  default_policy = "deny"
  # While the leader cannot answer, tokens already resolved keep their rights.
  down_policy = "extend-cache"
  # The agent's token, set by consul-acl-init through the API, is kept across restarts.
  enable_token_persistence = true
}
