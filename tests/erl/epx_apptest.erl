%% epx_apptest: the Erlang half of tests/check_preload.c.  An echo server
%% and clients over the nodes' own TCP (gen_tcp on inet_drv, or the socket
%% module), each socket owned by a long-lived process, so that a test can
%% drive them through epx_fixture_eval (every eval runs in a fresh process).
%% UDP: a socket owned by a registered process that keeps the sequence
%% numbers (<<Seq:32>> datagrams) it received.
-module(epx_apptest).
-export([server/1, connect/3, send/2, recv/3, peer/1, close/1, pattern/2]).
-export([udp_open/2, udp_connect/2, udp_send/3, udp_got/1, udp_await/3, udp_expect/2,
         udp_port/1]).

-define(CALL_MS, 60000).

%% Start an echo server on 127.0.0.1 (Backend: gen_tcp | socket); its port.
server(Backend) ->
    Self = self(),
    Ref = make_ref(),
    spawn(fun() -> serve(Backend, Self, Ref) end),
    receive
        {Ref, Port} -> Port
    after ?CALL_MS -> error(server_timeout)
    end.

serve(gen_tcp, From, Ref) ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true},
                                 {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    From ! {Ref, Port},
    accept_loop(gen_tcp, L);
serve(socket, From, Ref) ->
    {ok, L} = socket:open(inet, stream, tcp),
    ok = socket:setopt(L, {socket, reuseaddr}, true),
    ok = socket:bind(L, #{family => inet, addr => loopback, port => 0}),
    ok = socket:listen(L),
    {ok, #{port := Port}} = socket:sockname(L),
    From ! {Ref, Port},
    accept_loop(socket, L).

accept_loop(gen_tcp, L) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> echo(gen_tcp, S) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept_loop(gen_tcp, L);
accept_loop(socket, L) ->
    {ok, S} = socket:accept(L),
    Pid = spawn(fun() -> receive go -> echo(socket, S) end end),
    ok = socket:setopt(S, {otp, controlling_process}, Pid),
    Pid ! go,
    accept_loop(socket, L).

echo(gen_tcp, S) ->
    case gen_tcp:recv(S, 0) of
        {ok, B} -> gen_tcp:send(S, B), echo(gen_tcp, S);
        {error, _} -> gen_tcp:close(S)
    end;
echo(socket, S) ->
    case socket:recv(S, 0) of
        {ok, B} -> socket:send(S, B), echo(socket, S);
        {error, _} -> socket:close(S)
    end.

%% Connect to 127.0.0.1:Port; the socket's owner is registered as Name.
%% ok | {error, Reason}.
connect(Name, Port, Backend) ->
    Self = self(),
    Ref = make_ref(),
    spawn(fun() ->
                  case open(Backend, Port) of
                      {ok, S} ->
                          register(Name, self()),
                          Self ! {Ref, ok},
                          loop(Backend, S);
                      Error ->
                          Self ! {Ref, Error}
                  end
          end),
    receive
        {Ref, R} -> R
    after ?CALL_MS -> {error, connect_timeout}
    end.

open(gen_tcp, Port) ->
    gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 30000);
open(socket, Port) ->
    {ok, S} = socket:open(inet, stream, tcp),
    case socket:connect(S, #{family => inet, addr => loopback, port => Port}, 30000) of
        ok -> {ok, S};
        Error -> socket:close(S), Error
    end.

send(Name, Bin) -> call(Name, {send, Bin}).
%% {ok, Bin} | {error, timeout | closed | econnreset | ...}
recv(Name, Len, Ms) -> call(Name, {recv, Len, Ms}).
peer(Name) -> call(Name, peer).
close(Name) -> call(Name, close).

%% N bytes of a pattern that shows loss, duplication and reordering:
%% byte I is (I * 7 + Seed) rem 251.
pattern(Seed, N) -> list_to_binary([(I * 7 + Seed) rem 251 || I <- lists:seq(0, N - 1)]).

call(Name, Req) ->
    case whereis(Name) of
        undefined -> {error, no_such_client};
        Pid ->
            Ref = make_ref(),
            Pid ! {Ref, self(), Req},
            receive
                {Ref, R} -> R
            after ?CALL_MS -> {error, call_timeout}
            end
    end.

loop(Backend, S) ->
    receive
        {Ref, From, close} ->
            From ! {Ref, do_close(Backend, S)};
        {Ref, From, Req} ->
            From ! {Ref, handle(Backend, S, Req)},
            loop(Backend, S)
    end.

handle(gen_tcp, S, {send, B}) -> gen_tcp:send(S, B);
handle(gen_tcp, S, {recv, N, Ms}) -> gen_tcp:recv(S, N, Ms);
handle(gen_tcp, S, peer) -> inet:peername(S);
handle(socket, S, {send, B}) -> socket:send(S, B);
handle(socket, S, {recv, N, Ms}) -> socket:recv(S, N, Ms);
handle(socket, S, peer) ->
    case socket:peername(S) of
        {ok, #{addr := A, port := P}} -> {ok, {A, P}};
        E -> E
    end.

do_close(gen_tcp, S) -> gen_tcp:close(S);
do_close(socket, S) -> socket:close(S).

%% ---- UDP -------------------------------------------------------------------

%% A UDP socket on 127.0.0.1 (Backend: gen_udp | socket, or socket_unbound:
%% not bound, so that its first send binds it) owned by a process
%% registered as Name; its port (0 for socket_unbound).
udp_open(Name, Backend) ->
    Self = self(),
    Ref = make_ref(),
    spawn(fun() ->
                  register(Name, self()),
                  S = udp_socket(Backend),
                  Self ! {Ref, udp_port(Backend, S)},
                  udp_loop(Backend, S, [])
          end),
    receive
        {Ref, Port} -> Port
    after ?CALL_MS -> error(udp_open_timeout)
    end.

udp_socket(gen_udp) ->
    {ok, S} = gen_udp:open(0, [binary, {active, true}, {ip, {127, 0, 0, 1}}]),
    S;
udp_socket(socket) ->
    S = udp_socket(socket_unbound),
    ok = socket:bind(S, #{family => inet, addr => loopback, port => 0}),
    S;
udp_socket(socket_unbound) ->
    {ok, S} = socket:open(inet, dgram, udp),
    Owner = self(),
    %% a reader beside the owner: socket:recvfrom blocks
    spawn_link(fun() -> udp_reader(S, Owner) end),
    S.

udp_reader(S, Owner) ->
    case socket:recvfrom(S, 0, infinity) of
        {ok, {_, B}} -> Owner ! {udp_in, B}, udp_reader(S, Owner);
        {error, _} -> ok
    end.

udp_port(gen_udp, S) -> {ok, P} = inet:port(S), P;
udp_port(_, S) -> {ok, #{port := P}} = socket:sockname(S), P.

%% The port Name's socket is bound to now.
udp_port(Name) -> call(Name, udp_port).

%% gen_udp only: connect the socket to 127.0.0.1:Port; then udp_send with
%% Port = connected sends with gen_udp:send/2.
udp_connect(Name, Port) -> call(Name, {udp_connect, Port}).
%% Send <<Seq:32>> for each Seq to 127.0.0.1:Port (or connected); ok, or
%% the first error.
udp_send(Name, Port, Seqs) -> call(Name, {udp_send, Port, Seqs}).
%% The sequence numbers received so far, sorted.
udp_got(Name) -> call(Name, udp_got).
%% ok if exactly Want (sorted) was received, else {got, <<"[...]">>} (~w:
%% a list of numbers that happen to be printable stays numbers).
udp_expect(Name, Want) ->
    case udp_got(Name) of
        Want -> ok;
        Got -> {got, iolist_to_binary(io_lib:format("~w", [Got]))}
    end.
%% ok once Seq has been received, timeout after Ms (< 60 s).
udp_await(Name, Seq, Ms) -> call(Name, {udp_await, Seq, Ms}).

udp_loop(Backend, S, Got) ->
    receive
        {udp, S, _, _, B} -> udp_loop(Backend, S, udp_in(B, Got));
        {udp_in, B} -> udp_loop(Backend, S, udp_in(B, Got));
        {Ref, From, udp_port} ->
            From ! {Ref, udp_port(Backend, S)},
            udp_loop(Backend, S, Got);
        {Ref, From, udp_got} ->
            From ! {Ref, lists:sort(Got)},
            udp_loop(Backend, S, Got);
        {Ref, From, {udp_connect, Port}} ->
            From ! {Ref, gen_udp:connect(S, {127, 0, 0, 1}, Port)},
            udp_loop(Backend, S, Got);
        {Ref, From, {udp_send, Port, Seqs}} ->
            From ! {Ref, udp_send_all(Backend, S, Port, Seqs)},
            udp_loop(Backend, S, Got);
        {Ref, From, {udp_await, Seq, Ms}} ->
            Got1 = udp_wait(S, Seq, Got, erlang:monotonic_time(millisecond) + Ms),
            From ! {Ref, case lists:member(Seq, Got1) of true -> ok; false -> timeout end},
            udp_loop(Backend, S, Got1)
    end.

%% Take datagrams in until Seq is among them or the deadline passes.
udp_wait(S, Seq, Got, Deadline) ->
    case lists:member(Seq, Got) of
        true -> Got;
        false ->
            Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
            receive
                {udp, S, _, _, B} -> udp_wait(S, Seq, udp_in(B, Got), Deadline);
                {udp_in, B} -> udp_wait(S, Seq, udp_in(B, Got), Deadline)
            after Left -> Got
            end
    end.

udp_in(<<Seq:32>>, Got) -> [Seq | Got];
udp_in(_, Got) -> Got.

udp_send_all(_, _, _, []) -> ok;
udp_send_all(Backend, S, Port, [Seq | Rest]) ->
    case udp_send1(Backend, S, Port, <<Seq:32>>) of
        ok -> udp_send_all(Backend, S, Port, Rest);
        Error -> Error
    end.

udp_send1(gen_udp, S, connected, B) -> gen_udp:send(S, B);
udp_send1(gen_udp, S, Port, B) -> gen_udp:send(S, {127, 0, 0, 1}, Port, B);
udp_send1(_, S, Port, B) ->
    socket:sendto(S, B, #{family => inet, addr => loopback, port => Port}).
