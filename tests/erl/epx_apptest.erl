%% epx_apptest: the Erlang half of tests/check_preload.c.  An echo server
%% and clients over the nodes' own TCP (gen_tcp on inet_drv, or the socket
%% module), each socket owned by a long-lived process, so that a test can
%% drive them through epx_fixture_eval (every eval runs in a fresh process).
-module(epx_apptest).
-export([server/1, connect/3, send/2, recv/3, peer/1, close/1, pattern/2]).

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
