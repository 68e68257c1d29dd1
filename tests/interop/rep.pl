#!/usr/bin/perl
# The tutorial's rep.pl: a SHA-1 REP server in Perl (ZMQ::FFI), for the
# cross-language tests. Usage: perl rep.pl [ENDPOINT]
use strict;
use warnings;
use Digest::SHA qw(sha1_hex);
use ZMQ::FFI;
use ZMQ::FFI::Constants qw(ZMQ_REP ZMQ_LINGER ZMQ_LAST_ENDPOINT);

$| = 1;    # one line per event, flushed at once
my $endpoint = shift // 'tcp://127.0.0.1:5556';
my $ctx  = ZMQ::FFI->new();
my $sock = $ctx->socket(ZMQ_REP);
$sock->set(ZMQ_LINGER, 'int', 0);
$sock->bind($endpoint);
print "perl (pid=$$): serving sha1 on ", $sock->get(ZMQ_LAST_ENDPOINT, 'string'), "\n";

while (1) {
    my $data   = join '', $sock->recv_multipart();
    my $digest = sha1_hex($data);
    print "perl: received '$data' from client.\n";
    print "perl (pid=$$): sending back sha1 of the received data: $digest\n";
    $sock->send($digest);
}
