"""`dockwall export`: the policy as other firewalls' configuration (Kubernetes, ufw, AWS
security groups, nginx), with a warning for everything a target cannot express."""
