#!/usr/bin/perl
# The tutorial's mrep.pl: an echo REP worker in Perl (ZMQ::FFI) that connects
# to the broker's back end, for the cross-language tests.
# Usage: perl mrep.pl [ENDPOINT ...]
use strict;
use warnings;
use ZMQ::FFI;
use ZMQ::FFI::Constants qw(ZMQ_REP ZMQ_LINGER);

$| = 1;    # one line per event, flushed at once
my @endpoints = @ARGV ? @ARGV : ('tcp://127.0.0.1:5560');
my $ctx  = ZMQ::FFI->new();
my $sock = $ctx->socket(ZMQ_REP);
$sock->set(ZMQ_LINGER, 'int', 0);
$sock->connect($_) for @endpoints;
print "perl (pid=$$): echo server connecting to ", join(', ', @endpoints), "\n";

while (1) {
    my @frames = $sock->recv_multipart();
    my $data   = join '', @frames;
    print "perl: received '$data' from client.\n";
    print "perl (pid=$$): sending back the received data: $data\n";
    $sock->send_multipart(\@frames);
}
