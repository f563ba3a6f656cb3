-- one row: the line `convo build` prints on conversation outcomes: the close rate as
-- close_rates_daily defines it (operator closes over the conversations the contact
-- wrote in), over every day, and the first response over every answered conversation
with outcomes as (
    select * from conversation_outcomes
),

totals as (
    select
        count(*) as conversations,
        count(*) filter (where inbound_count > 0) as engaged,
        count(*) filter (where inbound_count > 0 and ended_reason = 'agent_close') as agent_closes,
        count(*) filter (where inbound_count > 0 and ended_reason = 'manual_close') as manual_closes,
        count(*) filter (where inbound_count > 0 and ended_reason is null) as still_open,
        count(first_response_seconds) as answered,
        quantile_cont(first_response_seconds, 0.5) as first_response_median_seconds,
        quantile_cont(first_response_seconds, 0.9) as first_response_p90_seconds
    from outcomes
),

final as (
    select
        case
            when engaged = 0 then format('outcomes: {:,} conversations, none with a message from the contact',
                conversations)
            else format(
                'outcomes: {:,} conversations, {:,} with a message from the contact: {:.1f}% closed by an operator '
                || '({:,} agent, {:,} manual, {:,} still open); first response median {} s, p90 {} s over {:,} answered',
                conversations,
                engaged,
                100.0 * (agent_closes + manual_closes) / engaged,
                agent_closes,
                manual_closes,
                still_open,
                coalesce(format('{:,.0f}', first_response_median_seconds), 'n/a'),
                coalesce(format('{:,.0f}', first_response_p90_seconds), 'n/a'),
                answered
            )
        end as line
    from totals
)

select * from final
