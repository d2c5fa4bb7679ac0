%% What a netsplit does to a `global' leader, tested with epmdpxy_cluster:
%% each side of the split elects its own; after heal, global keeps one.
-module(leader_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_testcase/2, end_per_testcase/2]).
-export([split_brain_then_one_leader/1]).

-define(AWAIT, 15000).

suite() ->
    [{timetrap, {minutes, 1}}].

all() ->
    [split_brain_then_one_leader].

init_per_testcase(_Case, Config) ->
    %% the nodes load the code under test from where rebar3 built it
    Ebin = filename:dirname(code:which(leader)),
    {ok, C} = epmdpxy_cluster:start(3, #{code_paths => [Ebin]}),
    [{cluster, C} | Config].

end_per_testcase(_Case, Config) ->
    epmdpxy_cluster:stop(?config(cluster, Config)).

split_brain_then_one_leader(Config) ->
    C = ?config(cluster, Config),
    {elected, First} = epmdpxy_cluster:call(C, n1, leader, elect, []),
    ok = await_leaders(C, #{n1 => First, n2 => First, n3 => First}),

    %% n1 alone, n2 and n3 together: the majority loses sight of the leader
    ok = epmdpxy_cluster:split(C, [[n1], [n2, n3]]),
    ok = epmdpxy_cluster:await_partition(C, ?AWAIT),
    ok = await_leaders(C, #{n1 => First, n2 => undefined, n3 => undefined}),
    {elected, Second} = epmdpxy_cluster:call(C, n2, leader, elect, []),
    ok = await_leaders(C, #{n1 => First, n2 => Second, n3 => Second}),

    %% heal: global sees two leaders under one name and keeps one
    ok = epmdpxy_cluster:heal(C),
    ok = epmdpxy_cluster:connect_all(C),
    ok = epmdpxy_cluster:await_connected(C, ?AWAIT),
    Survivor = await_one_leader(C),
    ?assert(Survivor =:= First orelse Survivor =:= Second).

%% Waits until each node names the expected leader.
await_leaders(C, Expected) ->
    Seen = fun() -> maps:map(fun(N, _) -> epmdpxy_cluster:call(C, N, leader, current, []) end,
                             Expected)
           end,
    await(fun() -> Seen() =:= Expected end, fun() -> {expected, Expected, saw, Seen()} end).

%% Waits until every node names the same, single leader; returns it.
await_one_leader(C) ->
    Leaders = fun() -> lists:usort([epmdpxy_cluster:call(C, N, leader, current, [])
                                    || N <- epmdpxy_cluster:nodes(C)])
              end,
    ok = await(fun() -> case Leaders() of [P] -> is_pid(P); _ -> false end end,
               fun() -> {not_one_leader, Leaders()} end),
    [Leader] = Leaders(),
    Leader.

%% Polls until Done() is true; fails with Why() after ?AWAIT ms.
await(Done, Why) ->
    Deadline = erlang:monotonic_time(millisecond) + ?AWAIT,
    await(Done, Why, Deadline).

await(Done, Why, Deadline) ->
    case Done() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> ct:fail(Why());
                false -> receive after 50 -> ok end, await(Done, Why, Deadline)
            end
    end.
