# Every resource type of the VPC family Canopy supports, and a data source
# for each, as a tenant's stack declares them (issue 15). The endpoint and
# credentials come from the environment the test sets.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" { type = string }

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  # The account id comes from the resources themselves: there is no IAM here.
  skip_requesting_account_id = true
  endpoints {
    ec2 = var.endpoint
    sts = var.endpoint
  }
}

# The account's default resources.
resource "aws_default_vpc" "default" {
  tags = { Name = "default" }
}

resource "aws_default_subnet" "a" {
  availability_zone = "us-east-1a"
  tags              = { Name = "default-a" }
}

resource "aws_default_security_group" "default" {
  vpc_id = aws_default_vpc.default.id
  ingress {
    protocol  = -1
    self      = true
    from_port = 0
    to_port   = 0
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# A VPC of its own.
resource "aws_vpc" "main" {
  cidr_block           = "10.40.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = "tf-main" }
}

resource "aws_default_route_table" "main" {
  default_route_table_id = aws_vpc.main.default_route_table_id
  tags                   = { Name = "tf-main-default" }
}

resource "aws_default_network_acl" "main" {
  default_network_acl_id = aws_vpc.main.default_network_acl_id
  ingress {
    protocol   = -1
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }
  egress {
    protocol   = -1
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }
  lifecycle { ignore_changes = [subnet_ids] }
}

resource "aws_default_security_group" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.main.id
  cidr_block              = "10.40.1.0/24"
  availability_zone       = "us-east-1a"
  map_public_ip_on_launch = true
  tags                    = { Name = "tf-public" }
}

resource "aws_subnet" "private" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = "10.40.2.0/24"
  availability_zone = "us-east-1a"
  tags              = { Name = "tf-private" }
}

resource "aws_internet_gateway" "gw" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "tf-igw" }
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "tf-nat" }
}

resource "aws_nat_gateway" "nat" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  tags          = { Name = "tf-nat" }
  depends_on    = [aws_internet_gateway.gw]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.gw.id
  }
  tags = { Name = "tf-public" }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "tf-private" }
}

resource "aws_route" "private_nat" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.nat.id
}

resource "aws_route" "private_eni" {
  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "192.168.50.0/24"
  network_interface_id   = aws_network_interface.extra.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table_association" "private" {
  subnet_id      = aws_subnet.private.id
  route_table_id = aws_route_table.private.id
}

resource "aws_security_group" "web" {
  name        = "tf-web"
  description = "web servers"
  vpc_id      = aws_vpc.main.id
  ingress {
    description = "https"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    protocol         = "tcp"
    from_port        = 80
    to_port          = 80
    ipv6_cidr_blocks = ["::/0"]
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = { Name = "tf-web" }
}

resource "aws_security_group" "app" {
  name        = "tf-app"
  description = "app servers"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "tf-app" }
}

resource "aws_security_group_rule" "app_from_web" {
  type                     = "ingress"
  security_group_id        = aws_security_group.app.id
  protocol                 = "tcp"
  from_port                = 8080
  to_port                  = 8080
  source_security_group_id = aws_security_group.web.id
}

resource "aws_security_group_rule" "app_icmp" {
  type              = "ingress"
  security_group_id = aws_security_group.app.id
  protocol          = "icmp"
  from_port         = -1
  to_port           = -1
  cidr_blocks       = ["10.40.0.0/16"]
  description       = "ping from the VPC"
}

resource "aws_vpc_security_group_ingress_rule" "app_ssh" {
  security_group_id = aws_security_group.app.id
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = "10.40.1.0/24"
  description       = "ssh from the public subnet"
}

resource "aws_vpc_security_group_egress_rule" "app_all" {
  security_group_id = aws_security_group.app.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_network_acl" "private" {
  vpc_id     = aws_vpc.main.id
  subnet_ids = [aws_subnet.private.id]
  ingress {
    protocol   = "tcp"
    rule_no    = 100
    action     = "allow"
    cidr_block = "10.40.0.0/16"
    from_port  = 0
    to_port    = 65535
  }
  egress {
    protocol   = "-1"
    rule_no    = 100
    action     = "allow"
    cidr_block = "0.0.0.0/0"
    from_port  = 0
    to_port    = 0
  }
  tags = { Name = "tf-private" }
}

resource "aws_network_acl" "spare" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = "tf-spare" }
}

resource "aws_network_acl_rule" "spare_icmp" {
  network_acl_id = aws_network_acl.spare.id
  rule_number    = 200
  egress         = false
  protocol       = "icmp"
  rule_action    = "allow"
  cidr_block     = "10.40.0.0/16"
  icmp_type      = -1
  icmp_code      = -1
}

resource "aws_network_acl_association" "spare" {
  network_acl_id = aws_network_acl.spare.id
  subnet_id      = aws_subnet.public.id
}

resource "aws_vpc_dhcp_options" "opts" {
  domain_name         = "tf.internal"
  domain_name_servers = ["AmazonProvidedDNS"]
  tags                = { Name = "tf-opts" }
}

resource "aws_vpc_dhcp_options_association" "opts" {
  vpc_id          = aws_vpc.main.id
  dhcp_options_id = aws_vpc_dhcp_options.opts.id
}

resource "aws_key_pair" "ops" {
  key_name   = "tf-ops"
  public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example"
  tags       = { Name = "tf-ops" }
}

resource "aws_instance" "web" {
  ami                    = "ami-0deb1a12c0ffee001"
  instance_type          = "t3.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.web.id]
  key_name               = aws_key_pair.ops.key_name
  credit_specification {
    cpu_credits = "unlimited"
  }
  tags = { Name = "tf-web" }
}

resource "aws_instance" "app" {
  ami                    = "ami-0deb1a12c0ffee001"
  instance_type          = "m5.large"
  subnet_id              = aws_subnet.private.id
  vpc_security_group_ids = [aws_security_group.app.id]
  private_ip             = "10.40.2.10"
  tags                   = { Name = "tf-app" }
}

resource "aws_network_interface" "extra" {
  subnet_id       = aws_subnet.private.id
  private_ips     = ["10.40.2.20"]
  security_groups = [aws_security_group.app.id]
  description     = "a second interface"
  tags            = { Name = "tf-extra" }
}

resource "aws_network_interface_attachment" "extra" {
  instance_id          = aws_instance.app.id
  network_interface_id = aws_network_interface.extra.id
  device_index         = 1
}

resource "aws_network_interface" "loose" {
  subnet_id   = aws_subnet.public.id
  description = "for an elastic IP"
}

resource "aws_eip" "loose" {
  domain = "vpc"
  tags   = { Name = "tf-loose" }
}

resource "aws_eip_association" "loose" {
  allocation_id        = aws_eip.loose.id
  network_interface_id = aws_network_interface.loose.id
}

# A data source for each.
data "aws_availability_zones" "all" {}
data "aws_region" "current" {}
data "aws_caller_identity" "me" {}

data "aws_vpc" "default" {
  default    = true
  depends_on = [aws_default_vpc.default]
}

data "aws_vpc" "main" {
  id = aws_vpc.main.id
}

data "aws_subnet" "public" {
  id = aws_subnet.public.id
}

data "aws_subnets" "main" {
  filter {
    name   = "vpc-id"
    values = [aws_vpc.main.id]
  }
  depends_on = [aws_subnet.public, aws_subnet.private]
}

data "aws_internet_gateway" "gw" {
  internet_gateway_id = aws_internet_gateway.gw.id
}

data "aws_route_table" "public" {
  route_table_id = aws_route_table.public.id
}

data "aws_security_group" "web" {
  id = aws_security_group.web.id
}

data "aws_network_acls" "main" {
  vpc_id     = aws_vpc.main.id
  depends_on = [aws_network_acl.private, aws_network_acl.spare]
}

data "aws_network_interface" "extra" {
  id = aws_network_interface.extra.id
}

data "aws_eip" "nat" {
  id = aws_eip.nat.id
}

data "aws_nat_gateway" "nat" {
  id = aws_nat_gateway.nat.id
}

data "aws_vpc_dhcp_options" "opts" {
  dhcp_options_id = aws_vpc_dhcp_options.opts.id
}

data "aws_key_pair" "ops" {
  key_name           = aws_key_pair.ops.key_name
  include_public_key = true
}

data "aws_instance" "web" {
  instance_id = aws_instance.web.id
}

output "checks" {
  value = {
    zones       = length(data.aws_availability_zones.all.names)
    region      = data.aws_region.current.name
    account     = data.aws_caller_identity.me.account_id
    default_vpc = data.aws_vpc.default.id == aws_default_vpc.default.id
    main_cidr   = data.aws_vpc.main.cidr_block
    subnets     = length(data.aws_subnets.main.ids)
    public_az   = data.aws_subnet.public.availability_zone
    igw_vpc     = data.aws_internet_gateway.gw.attachments[0].vpc_id == aws_vpc.main.id
    rtb_routes  = length(data.aws_route_table.public.routes)
    sg_name     = data.aws_security_group.web.name
    acls        = length(data.aws_network_acls.main.ids)
    eni_ip      = data.aws_network_interface.extra.private_ip
    eip         = data.aws_eip.nat.public_ip == aws_eip.nat.public_ip
    nat_state   = data.aws_nat_gateway.nat.state
    dhcp_domain = data.aws_vpc_dhcp_options.opts.domain_name
    key_type    = data.aws_key_pair.ops.key_type
    web_type    = data.aws_instance.web.instance_type
    web_public  = aws_instance.web.public_dns
  }
}
